#include "Arduino.h"

unsigned long millis(void) { return (unsigned long)(mqsim_now_us() / 1000); }
unsigned long micros(void) { return (unsigned long)mqsim_now_us(); }
void delay(uint32_t ms) { mqsim_delay_ms(ms); }
void delayMicroseconds(uint32_t us) { mqsim_delay_ms((us + 999) / 1000); }
void yield(void) { mqsim_yield(); }
uint32_t esp_random(void) { return mqsim_random(); }
long random(long howbig) {
  if (howbig <= 0) return 0;
  return (long)(mqsim_random() % (uint32_t)howbig);
}
long random(long howsmall, long howbig) {
  if (howsmall >= howbig) return howsmall;
  return random(howbig - howsmall) + howsmall;
}
// The device's random stream is the simulator's, seeded from the run's seed.
void randomSeed(unsigned long) {}
void pinMode(uint8_t, uint8_t) {}
void digitalWrite(uint8_t, uint8_t) {}
int digitalRead(uint8_t) { return LOW; }
int analogRead(uint8_t) { return 0; }
long map(long x, long in_min, long in_max, long out_min, long out_max) {
  if (in_max == in_min) return out_min;
  return (x - in_min) * (out_max - out_min) / (in_max - in_min) + out_min;
}
char* dtostrf(double val, signed char width, unsigned char prec, char* sout) {
  sprintf(sout, "%*.*f", width, prec, val);
  return sout;
}
static char* to_base(unsigned long v, bool neg, char* str, int base) {
  char tmp[66];
  int i = 0;
  if (base < 2 || base > 36) base = 10;
  do {
    int d = (int)(v % (unsigned long)base);
    tmp[i++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    v /= (unsigned long)base;
  } while (v);
  int o = 0;
  if (neg) str[o++] = '-';
  while (i) str[o++] = tmp[--i];
  str[o] = 0;
  return str;
}
char* ltoa(long value, char* str, int base) {
  bool neg = value < 0 && base == 10;
  unsigned long v = neg ? (unsigned long)(-(value + 1)) + 1 : (unsigned long)value;
  return to_base(v, neg, str, base);
}
char* itoa(int value, char* str, int base) { return ltoa(value, str, base); }
char* utoa(unsigned value, char* str, int base) { return to_base(value, false, str, base); }
char* ultoa(unsigned long value, char* str, int base) { return to_base(value, false, str, base); }
