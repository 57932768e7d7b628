// mqsim's Arduino core for a simulated ESP32: the subset of the ESP32 Arduino core's API that
// MQTT sketches and their libraries use. Time, serial, WiFi, TCP and randomness are the
// simulator's (mqsim_hal.h).
#ifndef Arduino_h
#define Arduino_h

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>

#include "mqsim_hal.h"

#ifndef ESP32
#define ESP32 1
#endif
#ifndef ARDUINO_ARCH_ESP32
#define ARDUINO_ARCH_ESP32 1
#endif

typedef bool boolean;
typedef uint8_t byte;
typedef unsigned int word;

#define HIGH 0x1
#define LOW 0x0
#define INPUT 0x01
#define OUTPUT 0x03
#define INPUT_PULLUP 0x05
#define LED_BUILTIN 2

#define PI 3.1415926535897932384626433832795
#ifndef DEC
#define DEC 10
#define HEX 16
#define OCT 8
#define BIN 2
#endif

#define PROGMEM
#define PGM_P const char*
#define PSTR(s) (s)
#define pgm_read_byte(addr) (*(const uint8_t*)(addr))
#define pgm_read_byte_near(addr) pgm_read_byte(addr)
#define pgm_read_word(addr) (*(const uint16_t*)(addr))
#define strlen_P strlen
#define strcpy_P strcpy
#define strncpy_P strncpy
#define memcpy_P memcpy
#define strcmp_P strcmp
#define sprintf_P sprintf
#define snprintf_P snprintf

using std::max;
using std::min;
#define constrain(amt, low, high) ((amt) < (low) ? (low) : ((amt) > (high) ? (high) : (amt)))
#define bitRead(value, bit) (((value) >> (bit)) & 0x01)
#define bitSet(value, bit) ((value) |= (1UL << (bit)))
#define bitClear(value, bit) ((value) &= ~(1UL << (bit)))
#define lowByte(w) ((uint8_t)((w) & 0xff))
#define highByte(w) ((uint8_t)((w) >> 8))

unsigned long millis(void);
unsigned long micros(void);
void delay(uint32_t ms);
void delayMicroseconds(uint32_t us);
void yield(void);
long random(long howbig);
long random(long howsmall, long howbig);
void randomSeed(unsigned long seed);
uint32_t esp_random(void);
void pinMode(uint8_t pin, uint8_t mode);
void digitalWrite(uint8_t pin, uint8_t val);
int digitalRead(uint8_t pin);
int analogRead(uint8_t pin);
long map(long x, long in_min, long in_max, long out_min, long out_max);
char* dtostrf(double val, signed char width, unsigned char prec, char* sout);
char* itoa(int value, char* str, int base);
char* ltoa(long value, char* str, int base);
char* utoa(unsigned value, char* str, int base);
char* ultoa(unsigned long value, char* str, int base);

void setup(void);
void loop(void);

#include "HardwareSerial.h"
#include "IPAddress.h"
#include "Print.h"
#include "Stream.h"
#include "WString.h"

#endif
