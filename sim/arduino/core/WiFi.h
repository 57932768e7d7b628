#ifndef WiFi_h
#define WiFi_h

#include "Arduino.h"
#include "IPAddress.h"
#include "WiFiClient.h"

typedef enum {
  WL_NO_SHIELD = 255,
  WL_IDLE_STATUS = 0,
  WL_NO_SSID_AVAIL = 1,
  WL_SCAN_COMPLETED = 2,
  WL_CONNECTED = 3,
  WL_CONNECT_FAILED = 4,
  WL_CONNECTION_LOST = 5,
  WL_DISCONNECTED = 6
} wl_status_t;

typedef enum { WIFI_OFF = 0, WIFI_STA = 1, WIFI_AP = 2, WIFI_AP_STA = 3 } wifi_mode_t;

// The station: joins the simulator's access point (its join delay is the link's `wifi_join_ms`).
class WiFiClass {
 public:
  wl_status_t begin(const char* ssid, const char* passphrase = nullptr) {
    (void)ssid, (void)passphrase;
    mqsim_wifi_begin();
    return status();
  }
  wl_status_t status() { return (wl_status_t)mqsim_wifi_status(); }
  bool isConnected() { return status() == WL_CONNECTED; }
  bool mode(wifi_mode_t) { return true; }
  bool disconnect(bool = false) { return true; }
  bool reconnect() {
    mqsim_wifi_begin();
    return true;
  }
  bool setAutoReconnect(bool) { return true; }
  IPAddress localIP() { return IPAddress(192, 168, 100, 101); }
  String macAddress() { return String("24:0A:C4:00:00:01"); }
  int8_t RSSI() { return -60; }
};

extern WiFiClass WiFi;

#endif
