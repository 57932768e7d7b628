#include "WString.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

static std::string in_base(unsigned long v, bool neg, unsigned char base) {
  if (base < 2 || base > 36) base = 10;
  std::string s;
  do {
    int d = (int)(v % base);
    s.insert(s.begin(), (char)(d < 10 ? '0' + d : 'a' + d - 10));
    v /= base;
  } while (v);
  if (neg) s.insert(s.begin(), '-');
  return s;
}

static std::string signed_in_base(long n, unsigned char base) {
  if (base == 10 && n < 0) return in_base((unsigned long)(-(n + 1)) + 1, true, 10);
  return in_base((unsigned long)n, false, base);
}

static std::string fixed(double f, unsigned int decimals) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.*f", (int)decimals, f);
  return buf;
}

String::String(unsigned char n, unsigned char base) : s_(in_base(n, false, base)) {}
String::String(int n, unsigned char base) : s_(signed_in_base(n, base)) {}
String::String(unsigned int n, unsigned char base) : s_(in_base(n, false, base)) {}
String::String(long n, unsigned char base) : s_(signed_in_base(n, base)) {}
String::String(unsigned long n, unsigned char base) : s_(in_base(n, false, base)) {}
String::String(float f, unsigned int decimals) : s_(fixed(f, decimals)) {}
String::String(double f, unsigned int decimals) : s_(fixed(f, decimals)) {}

bool String::equalsIgnoreCase(const String& o) const {
  if (s_.size() != o.s_.size()) return false;
  for (size_t i = 0; i < s_.size(); i++)
    if (tolower((unsigned char)s_[i]) != tolower((unsigned char)o.s_[i])) return false;
  return true;
}

void String::getBytes(unsigned char* buf, unsigned int size, unsigned int index) const {
  if (!size || !buf) return;
  unsigned int n = 0;
  for (unsigned int i = index; i < s_.size() && n + 1 < size; i++) buf[n++] = (unsigned char)s_[i];
  buf[n] = 0;
}

int String::indexOf(char c, unsigned int from) const {
  size_t i = s_.find(c, from);
  return i == std::string::npos ? -1 : (int)i;
}
int String::indexOf(const String& s, unsigned int from) const {
  size_t i = s_.find(s.s_, from);
  return i == std::string::npos ? -1 : (int)i;
}
int String::lastIndexOf(char c) const {
  size_t i = s_.rfind(c);
  return i == std::string::npos ? -1 : (int)i;
}
String String::substring(unsigned int from, unsigned int to) const {
  if (from > to) std::swap(from, to);
  if (from >= s_.size()) return String();
  if (to > s_.size()) to = (unsigned int)s_.size();
  return String(s_.substr(from, to - from));
}
void String::replace(const String& find, const String& with) {
  if (find.s_.empty()) return;
  size_t pos = 0;
  while ((pos = s_.find(find.s_, pos)) != std::string::npos) {
    s_.replace(pos, find.s_.size(), with.s_);
    pos += with.s_.size();
  }
}
void String::remove(unsigned int index, unsigned int count) {
  if (index < s_.size()) s_.erase(index, count);
}
void String::toLowerCase() {
  for (auto& c : s_) c = (char)tolower((unsigned char)c);
}
void String::toUpperCase() {
  for (auto& c : s_) c = (char)toupper((unsigned char)c);
}
void String::trim() {
  size_t b = s_.find_first_not_of(" \t\r\n");
  size_t e = s_.find_last_not_of(" \t\r\n");
  s_ = b == std::string::npos ? std::string() : s_.substr(b, e - b + 1);
}
long String::toInt() const { return strtol(s_.c_str(), nullptr, 10); }
float String::toFloat() const { return (float)strtod(s_.c_str(), nullptr); }
double String::toDouble() const { return strtod(s_.c_str(), nullptr); }

String operator+(const String& a, const String& b) {
  String r(a);
  r.concat(b);
  return r;
}
String operator+(const String& a, const char* b) {
  String r(a);
  r.concat(b);
  return r;
}
String operator+(const char* a, const String& b) {
  String r(a);
  r.concat(b);
  return r;
}
String operator+(const String& a, char b) {
  String r(a);
  r.concat(b);
  return r;
}
#define PLUS(T)                            \
  String operator+(const String& a, T b) { \
    String r(a);                           \
    r.concat(String(b));                   \
    return r;                              \
  }
PLUS(int)
PLUS(unsigned int)
PLUS(long)
PLUS(unsigned long)
PLUS(float)
PLUS(double)
