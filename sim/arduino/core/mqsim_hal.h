// mqsim's Arduino core: the narrow C interface between the core and the simulator.
// Everything of the world a sketch sees (clock, serial port, WiFi, TCP socket, randomness,
// sensors) goes through these functions and nothing else. The simulator implements them (in
// Rust, sim/src/sketch/): in this process they are stubs that ask it over a pipe and wait for its
// answer, so the sketch runs only while the simulator waits for it, never beside it.
#ifndef MQSIM_HAL_H
#define MQSIM_HAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Simulated microseconds since boot (each call costs the sketch a little virtual CPU time).
uint64_t mqsim_now_us(void);
// Blocks for `ms` of simulated time.
void mqsim_delay_ms(uint32_t ms);
// yield(): hands control back; costs a little virtual time.
void mqsim_yield(void);
// Bytes written to the serial port (lines end at '\n').
void mqsim_serial_write(const uint8_t* buf, size_t len);
// WiFi.begin(): starts joining the access point.
void mqsim_wifi_begin(void);
// WiFi.status(): 3 (WL_CONNECTED) once joined, else 6 (WL_DISCONNECTED).
int mqsim_wifi_status(void);
// A random 32-bit number from the device's seeded stream.
uint32_t mqsim_random(void);
// Opens the TCP connection to the broker (`host`, `port` as the sketch gave them; the simulated
// field has one broker). 1 = connected, 0 = failed; blocks in simulated time.
int mqsim_tcp_connect(const char* host, uint16_t port);
// Writes `len` bytes; returns how many were written (0 = failed).
size_t mqsim_tcp_write(const uint8_t* buf, size_t len);
// Bytes readable now without blocking.
int mqsim_tcp_available(void);
// Reads at most `len` bytes that are readable now; -1 = none.
int mqsim_tcp_read(uint8_t* buf, size_t len);
// Peeks at the next byte; -1 = none.
int mqsim_tcp_peek(void);
// The connection is open (or unread bytes remain).
int mqsim_tcp_connected(void);
// Closes the connection.
void mqsim_tcp_stop(void);
// A sensor reading of the scenario: kind 0 = temperature (degrees C), 1 = humidity (%).
double mqsim_sensor(int kind);
// End of one loop() (the ESP32 core's loop task): costs a little virtual time.
void mqsim_loop_end(void);

#ifdef __cplusplus
}
#endif

#endif
