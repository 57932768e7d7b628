#ifndef HardwareSerial_h
#define HardwareSerial_h

#include "Stream.h"

// The serial port: what the sketch prints is the device's serial lines in the simulator's trace.
// Nothing is ever received.
class HardwareSerial : public Stream {
 public:
  void begin(unsigned long baud, uint32_t config = 0, int8_t rxPin = -1, int8_t txPin = -1) {
    (void)baud, (void)config, (void)rxPin, (void)txPin;
  }
  void end() {}
  int available() override { return 0; }
  int read() override { return -1; }
  int peek() override { return -1; }
  size_t write(uint8_t c) override;
  size_t write(const uint8_t* buffer, size_t size) override;
  using Print::write;
  operator bool() const { return true; }
};

extern HardwareSerial Serial;

#endif
