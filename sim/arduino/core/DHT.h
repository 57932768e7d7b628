#ifndef DHT_H
#define DHT_H

#include "Arduino.h"

// Adafruit's DHT sensor library's API, fed by the scenario's sensor (the simulator's readings),
// not by pin timings. It shadows a DHT library in the user's libraries folder.
#define DHT11 11
#define DHT12 12
#define DHT21 21
#define DHT22 22
#define AM2301 21

class DHT {
 public:
  DHT(uint8_t pin, uint8_t type, uint8_t count = 6) { (void)pin, (void)type, (void)count; }
  void begin(uint8_t usec = 55) { (void)usec; }
  float readTemperature(bool isFahrenheit = false, bool force = false) {
    (void)force;
    float c = (float)mqsim_sensor(0);
    return isFahrenheit ? c * 1.8f + 32 : c;
  }
  float readHumidity(bool force = false) { return (void)force, (float)mqsim_sensor(1); }
  float convertCtoF(float c) { return c * 1.8f + 32; }
  float convertFtoC(float f) { return (f - 32) * 0.55555f; }
};

#endif
