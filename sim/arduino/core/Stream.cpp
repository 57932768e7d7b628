#include "Stream.h"

#include "Arduino.h"

int Stream::timedRead() {
  unsigned long start = millis();
  do {
    int c = read();
    if (c >= 0) return c;
    yield();
  } while (millis() - start < _timeout);
  return -1;
}

size_t Stream::readBytes(char* buffer, size_t length) {
  size_t n = 0;
  while (n < length) {
    int c = timedRead();
    if (c < 0) break;
    buffer[n++] = (char)c;
  }
  return n;
}

String Stream::readString() {
  String s;
  int c;
  while ((c = timedRead()) >= 0) s += (char)c;
  return s;
}

String Stream::readStringUntil(char terminator) {
  String s;
  int c;
  while ((c = timedRead()) >= 0 && c != terminator) s += (char)c;
  return s;
}
