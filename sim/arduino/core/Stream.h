#ifndef Stream_h
#define Stream_h

#include "Print.h"

class Stream : public Print {
 public:
  virtual int available() = 0;
  virtual int read() = 0;
  virtual int peek() = 0;
  void setTimeout(unsigned long timeout) { _timeout = timeout; }
  unsigned long getTimeout() const { return _timeout; }
  size_t readBytes(char* buffer, size_t length);
  size_t readBytes(uint8_t* buffer, size_t length) { return readBytes((char*)buffer, length); }
  String readString();
  String readStringUntil(char terminator);

 protected:
  int timedRead();
  unsigned long _timeout = 1000;
};

#endif
