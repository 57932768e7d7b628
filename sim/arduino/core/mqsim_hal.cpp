// The C interface's stubs: requests to the simulator over the process's standard input and
// output (a private copy of stdout: the sketch's own printf goes to stderr), one at a time.
// Request: op u8, arg u64 (little-endian), len u32, bytes. Reply: value i64, len u32, bytes.
// Serial writes get no reply.
#include "mqsim_hal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "Arduino.h"

enum Op : uint8_t {
  OP_NOW = 1,
  OP_DELAY = 2,
  OP_YIELD = 3,
  OP_SERIAL = 4,
  OP_WIFI_BEGIN = 5,
  OP_WIFI_STATUS = 6,
  OP_RANDOM = 7,
  OP_TCP_CONNECT = 8,
  OP_TCP_WRITE = 9,
  OP_TCP_AVAILABLE = 10,
  OP_TCP_READ = 11,
  OP_TCP_PEEK = 12,
  OP_TCP_CONNECTED = 13,
  OP_TCP_STOP = 14,
  OP_SENSOR = 15,
  OP_LOOP_END = 16,
  OP_START = 17,
};

static int to_sim = -1;
static int from_sim = 0;

static void write_all(const void* p, size_t n) {
  const uint8_t* b = (const uint8_t*)p;
  while (n > 0) {
    ssize_t w = write(to_sim, b, n);
    if (w <= 0) _exit(0);  // the simulator is gone
    b += w;
    n -= (size_t)w;
  }
}

static void read_all(void* p, size_t n) {
  uint8_t* b = (uint8_t*)p;
  while (n > 0) {
    ssize_t r = read(from_sim, b, n);
    if (r <= 0) _exit(0);  // the simulator is gone: the run ended
    b += r;
    n -= (size_t)r;
  }
}

static void put_le(uint8_t* b, uint64_t v, int n) {
  for (int i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t* b, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v |= (uint64_t)b[i] << (8 * i);
  return v;
}

static void send(Op op, uint64_t arg, const void* data, size_t len) {
  uint8_t head[13];
  head[0] = op;
  put_le(head + 1, arg, 8);
  put_le(head + 9, (uint64_t)len, 4);
  write_all(head, sizeof head);
  if (len) write_all(data, len);
}

// One request and its reply; `out` (capacity `cap`) gets the reply's bytes.
static int64_t call(Op op, uint64_t arg, const void* data, size_t len, void* out = nullptr,
                    size_t cap = 0, size_t* got = nullptr) {
  send(op, arg, data, len);
  uint8_t head[12];
  read_all(head, sizeof head);
  int64_t value = (int64_t)get_le(head, 8);
  size_t n = (size_t)get_le(head + 8, 4);
  uint8_t scratch[256];
  size_t kept = 0;
  while (n > 0) {
    size_t room = cap - kept;
    if (room > 0) {
      size_t k = n < room ? n : room;
      read_all((uint8_t*)out + kept, k);
      kept += k;
      n -= k;
    } else {
      size_t k = n < sizeof scratch ? n : sizeof scratch;
      read_all(scratch, k);
      n -= k;
    }
  }
  if (got) *got = kept;
  return value;
}

extern "C" {

uint64_t mqsim_now_us(void) { return (uint64_t)call(OP_NOW, 0, nullptr, 0); }
void mqsim_delay_ms(uint32_t ms) { call(OP_DELAY, ms, nullptr, 0); }
void mqsim_yield(void) { call(OP_YIELD, 0, nullptr, 0); }
void mqsim_serial_write(const uint8_t* buf, size_t len) { send(OP_SERIAL, 0, buf, len); }
void mqsim_wifi_begin(void) { call(OP_WIFI_BEGIN, 0, nullptr, 0); }
int mqsim_wifi_status(void) { return (int)call(OP_WIFI_STATUS, 0, nullptr, 0); }
uint32_t mqsim_random(void) { return (uint32_t)call(OP_RANDOM, 0, nullptr, 0); }
int mqsim_tcp_connect(const char* host, uint16_t port) {
  return (int)call(OP_TCP_CONNECT, port, host, host ? strlen(host) : 0);
}
size_t mqsim_tcp_write(const uint8_t* buf, size_t len) {
  return (size_t)call(OP_TCP_WRITE, 0, buf, len);
}
int mqsim_tcp_available(void) { return (int)call(OP_TCP_AVAILABLE, 0, nullptr, 0); }
int mqsim_tcp_read(uint8_t* buf, size_t len) {
  size_t got = 0;
  int64_t v = call(OP_TCP_READ, len, nullptr, 0, buf, len, &got);
  return v < 0 ? -1 : (int)got;
}
int mqsim_tcp_peek(void) { return (int)call(OP_TCP_PEEK, 0, nullptr, 0); }
int mqsim_tcp_connected(void) { return (int)call(OP_TCP_CONNECTED, 0, nullptr, 0); }
void mqsim_tcp_stop(void) { call(OP_TCP_STOP, 0, nullptr, 0); }
double mqsim_sensor(int kind) {
  int64_t milli = call(OP_SENSOR, (uint64_t)kind, nullptr, 0);
  if (milli == INT64_MIN) return NAN;
  return (double)milli / 1000.0;
}
void mqsim_loop_end(void) { call(OP_LOOP_END, 0, nullptr, 0); }

}  // extern "C"

// The ESP32 core's entry: setup() once, then loop() for ever, on the simulator's baton.
int main(void) {
  to_sim = dup(1);
  dup2(2, 1);  // the sketch's printf must not mix with the protocol
  call(OP_START, 0, nullptr, 0);
  setup();
  for (;;) {
    loop();
    mqsim_loop_end();
  }
}
