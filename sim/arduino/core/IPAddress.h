#ifndef IPAddress_h
#define IPAddress_h

#include <stdint.h>

#include "Print.h"
#include "WString.h"

class IPAddress : public Printable {
 public:
  IPAddress() : b_{0, 0, 0, 0} {}
  IPAddress(uint8_t a, uint8_t b, uint8_t c, uint8_t d) : b_{a, b, c, d} {}
  IPAddress(uint32_t v) : b_{(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)} {}
  IPAddress(const uint8_t* a) : b_{a[0], a[1], a[2], a[3]} {}
  bool fromString(const char* s);
  bool fromString(const String& s) { return fromString(s.c_str()); }
  operator uint32_t() const {
    return (uint32_t)b_[0] | ((uint32_t)b_[1] << 8) | ((uint32_t)b_[2] << 16) | ((uint32_t)b_[3] << 24);
  }
  bool operator==(const IPAddress& o) const { return (uint32_t)*this == (uint32_t)o; }
  uint8_t operator[](int i) const { return b_[i]; }
  uint8_t& operator[](int i) { return b_[i]; }
  String toString() const;
  size_t printTo(Print& p) const override;

 private:
  uint8_t b_[4];
};

#endif
