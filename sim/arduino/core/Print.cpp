#include "Print.h"

#include <stdarg.h>
#include <stdio.h>

#include "Arduino.h"

size_t Print::write(const uint8_t* buffer, size_t size) {
  size_t n = 0;
  while (size--) {
    if (write(*buffer++))
      n++;
    else
      break;
  }
  return n;
}

size_t Print::printf(const char* format, ...) {
  char small[128];
  va_list ap;
  va_start(ap, format);
  int len = vsnprintf(small, sizeof small, format, ap);
  va_end(ap);
  if (len < 0) return 0;
  if ((size_t)len < sizeof small) return write((const uint8_t*)small, (size_t)len);
  char* big = (char*)malloc((size_t)len + 1);
  if (!big) return 0;
  va_start(ap, format);
  vsnprintf(big, (size_t)len + 1, format, ap);
  va_end(ap);
  size_t n = write((const uint8_t*)big, (size_t)len);
  free(big);
  return n;
}

size_t Print::printNumber(unsigned long long v, bool negative, int base) {
  char buf[70];
  char* p = &buf[sizeof buf - 1];
  *p = 0;
  if (base < 2) base = 10;
  do {
    int d = (int)(v % (unsigned)base);
    *--p = (char)(d < 10 ? '0' + d : 'A' + d - 10);
    v /= (unsigned)base;
  } while (v);
  if (negative) *--p = '-';
  return write(p);
}

size_t Print::print(const String& s) { return write((const uint8_t*)s.c_str(), s.length()); }
size_t Print::print(const char s[]) { return write(s); }
size_t Print::print(char c) { return write((uint8_t)c); }
size_t Print::print(unsigned char b, int base) { return printNumber(b, false, base); }
size_t Print::print(int n, int base) { return print((long long)n, base); }
size_t Print::print(unsigned int n, int base) { return printNumber(n, false, base); }
size_t Print::print(long n, int base) { return print((long long)n, base); }
size_t Print::print(unsigned long n, int base) { return printNumber(n, false, base); }
size_t Print::print(long long n, int base) {
  if (base == 10 && n < 0) return printNumber((unsigned long long)(-(n + 1)) + 1, true, 10);
  return printNumber((unsigned long long)n, false, base);
}
size_t Print::print(unsigned long long n, int base) { return printNumber(n, false, base); }
size_t Print::print(double d, int digits) {
  if (isnan(d)) return print("nan");
  if (isinf(d)) return print("inf");
  char buf[64];
  snprintf(buf, sizeof buf, "%.*f", digits, d);
  return write(buf);
}
size_t Print::print(const Printable& p) { return p.printTo(*this); }
size_t Print::println(void) { return write("\r\n"); }
#define PRINTLN(T)                   \
  size_t Print::println(T x) {       \
    size_t n = print(x);             \
    return n + println();            \
  }
#define PRINTLN_BASE(T)                \
  size_t Print::println(T x, int b) {  \
    size_t n = print(x, b);            \
    return n + println();              \
  }
PRINTLN(const String&)
PRINTLN(const char*)
PRINTLN(char)
PRINTLN(const Printable&)
PRINTLN_BASE(unsigned char)
PRINTLN_BASE(int)
PRINTLN_BASE(unsigned int)
PRINTLN_BASE(long)
PRINTLN_BASE(unsigned long)
PRINTLN_BASE(long long)
PRINTLN_BASE(unsigned long long)
PRINTLN_BASE(double)
