#include "HardwareSerial.h"

#include "mqsim_hal.h"

HardwareSerial Serial;

size_t HardwareSerial::write(uint8_t c) {
  mqsim_serial_write(&c, 1);
  return 1;
}

size_t HardwareSerial::write(const uint8_t* buffer, size_t size) {
  mqsim_serial_write(buffer, size);
  return size;
}
