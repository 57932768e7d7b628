#ifndef WiFiClient_h
#define WiFiClient_h

#include "Arduino.h"
#include "Client.h"

// The ESP32 core's WiFiClient: the device's one TCP connection, the simulator's modelled link.
class WiFiClient : public Client {
 public:
  int connect(IPAddress ip, uint16_t port) override;
  int connect(const char* host, uint16_t port) override;
  int connect(IPAddress ip, uint16_t port, int32_t timeout_ms) { return (void)timeout_ms, connect(ip, port); }
  int connect(const char* host, uint16_t port, int32_t timeout_ms) {
    return (void)timeout_ms, connect(host, port);
  }
  size_t write(uint8_t b) override { return write(&b, 1); }
  size_t write(const uint8_t* buf, size_t size) override;
  using Print::write;
  int available() override { return mqsim_tcp_available(); }
  int read() override;
  int read(uint8_t* buf, size_t size) override { return mqsim_tcp_read(buf, size); }
  int peek() override { return mqsim_tcp_peek(); }
  void flush() override {}
  void stop() override { mqsim_tcp_stop(); }
  uint8_t connected() override { return (uint8_t)mqsim_tcp_connected(); }
  operator bool() override { return connected(); }
  int setTimeout(uint32_t seconds) { return (void)seconds, 0; }
  int setNoDelay(bool) { return 0; }
};

#endif
