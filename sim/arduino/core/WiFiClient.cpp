#include "WiFiClient.h"

int WiFiClient::connect(IPAddress ip, uint16_t port) { return connect(ip.toString().c_str(), port); }
int WiFiClient::connect(const char* host, uint16_t port) { return mqsim_tcp_connect(host, port); }
size_t WiFiClient::write(const uint8_t* buf, size_t size) {
  if (size == 0) return 0;
  return mqsim_tcp_write(buf, size);
}
int WiFiClient::read() {
  uint8_t b;
  return mqsim_tcp_read(&b, 1) == 1 ? b : -1;
}
