#ifndef WString_h
#define WString_h

#include <stddef.h>
#include <stdint.h>

#include <string>

class __FlashStringHelper;
#define F(s) (reinterpret_cast<const __FlashStringHelper*>(s))

// Arduino's String, over std::string.
class String {
 public:
  String(const char* s = "") : s_(s ? s : "") {}
  String(const __FlashStringHelper* s) : s_(reinterpret_cast<const char*>(s)) {}
  String(const std::string& s) : s_(s) {}
  String(const String&) = default;
  String(String&&) = default;
  explicit String(char c) : s_(1, c) {}
  explicit String(unsigned char n, unsigned char base = 10);
  explicit String(int n, unsigned char base = 10);
  explicit String(unsigned int n, unsigned char base = 10);
  explicit String(long n, unsigned char base = 10);
  explicit String(unsigned long n, unsigned char base = 10);
  explicit String(float f, unsigned int decimals = 2);
  explicit String(double f, unsigned int decimals = 2);
  String& operator=(const String&) = default;
  String& operator=(String&&) = default;
  String& operator=(const char* s) {
    s_ = s ? s : "";
    return *this;
  }

  unsigned int length() const { return (unsigned int)s_.size(); }
  const char* c_str() const { return s_.c_str(); }
  bool reserve(unsigned int n) {
    s_.reserve(n);
    return true;
  }
  bool isEmpty() const { return s_.empty(); }

  bool concat(const String& o) {
    s_ += o.s_;
    return true;
  }
  bool concat(const char* o) {
    if (o) s_ += o;
    return true;
  }
  bool concat(char c) {
    s_ += c;
    return true;
  }
  template <typename T>
  bool concat(T v) {
    return concat(String(v));
  }
  template <typename T>
  String& operator+=(const T& v) {
    concat(v);
    return *this;
  }

  bool equals(const String& o) const { return s_ == o.s_; }
  bool equals(const char* o) const { return s_ == (o ? o : ""); }
  bool operator==(const String& o) const { return equals(o); }
  bool operator==(const char* o) const { return equals(o); }
  bool operator!=(const String& o) const { return !equals(o); }
  bool operator!=(const char* o) const { return !equals(o); }
  bool operator<(const String& o) const { return s_ < o.s_; }
  bool equalsIgnoreCase(const String& o) const;
  bool startsWith(const String& p) const { return s_.compare(0, p.s_.size(), p.s_) == 0; }
  bool endsWith(const String& p) const {
    return s_.size() >= p.s_.size() && s_.compare(s_.size() - p.s_.size(), p.s_.size(), p.s_) == 0;
  }

  char charAt(unsigned int i) const { return i < s_.size() ? s_[i] : 0; }
  void setCharAt(unsigned int i, char c) {
    if (i < s_.size()) s_[i] = c;
  }
  char operator[](unsigned int i) const { return charAt(i); }
  char& operator[](unsigned int i) { return s_[i]; }
  void getBytes(unsigned char* buf, unsigned int size, unsigned int index = 0) const;
  void toCharArray(char* buf, unsigned int size, unsigned int index = 0) const {
    getBytes((unsigned char*)buf, size, index);
  }

  int indexOf(char c, unsigned int from = 0) const;
  int indexOf(const String& s, unsigned int from = 0) const;
  int lastIndexOf(char c) const;
  String substring(unsigned int from) const { return substring(from, length()); }
  String substring(unsigned int from, unsigned int to) const;

  void replace(const String& find, const String& with);
  void remove(unsigned int index) { remove(index, length()); }
  void remove(unsigned int index, unsigned int count);
  void toLowerCase();
  void toUpperCase();
  void trim();

  long toInt() const;
  float toFloat() const;
  double toDouble() const;

  explicit operator bool() const { return true; }

 private:
  std::string s_;
};

String operator+(const String& a, const String& b);
String operator+(const String& a, const char* b);
String operator+(const char* a, const String& b);
String operator+(const String& a, char b);
String operator+(const String& a, int b);
String operator+(const String& a, unsigned int b);
String operator+(const String& a, long b);
String operator+(const String& a, unsigned long b);
String operator+(const String& a, float b);
String operator+(const String& a, double b);

#endif
