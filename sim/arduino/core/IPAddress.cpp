#include "IPAddress.h"

#include <stdio.h>

bool IPAddress::fromString(const char* s) {
  unsigned a, b, c, d;
  char extra;
  if (!s || sscanf(s, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) != 4) return false;
  if (a > 255 || b > 255 || c > 255 || d > 255) return false;
  b_[0] = (uint8_t)a, b_[1] = (uint8_t)b, b_[2] = (uint8_t)c, b_[3] = (uint8_t)d;
  return true;
}

String IPAddress::toString() const {
  char buf[16];
  snprintf(buf, sizeof buf, "%u.%u.%u.%u", b_[0], b_[1], b_[2], b_[3]);
  return String(buf);
}

size_t IPAddress::printTo(Print& p) const { return p.print(toString()); }
