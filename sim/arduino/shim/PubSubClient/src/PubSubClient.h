// A minimal PubSubClient-compatible MQTT 3.1.1 client, written for mqsim's tests because the real
// PubSubClient (Nick O'Leary's, MIT) is not available to CI. Same API subset, defaults and state
// codes as PubSubClient 2.8: keep alive 15 s, socket timeout 15 s, 256-byte buffer, QoS 0
// publishes, clean session, blocking reads that spin on available() and millis().
#ifndef PubSubClient_h
#define PubSubClient_h

#include <functional>

#include "Arduino.h"
#include "Client.h"
#include "IPAddress.h"

#define MQTT_VERSION_3_1_1 4
#define MQTT_MAX_PACKET_SIZE 256
#define MQTT_KEEPALIVE 15
#define MQTT_SOCKET_TIMEOUT 15

#define MQTT_CONNECTION_TIMEOUT -4
#define MQTT_CONNECTION_LOST -3
#define MQTT_CONNECT_FAILED -2
#define MQTT_DISCONNECTED -1
#define MQTT_CONNECTED 0
#define MQTT_CONNECT_BAD_PROTOCOL 1
#define MQTT_CONNECT_BAD_CLIENT_ID 2
#define MQTT_CONNECT_UNAVAILABLE 3
#define MQTT_CONNECT_BAD_CREDENTIALS 4
#define MQTT_CONNECT_UNAUTHORIZED 5

#define MQTTCONNECT (1 << 4)
#define MQTTCONNACK (2 << 4)
#define MQTTPUBLISH (3 << 4)
#define MQTTPUBACK (4 << 4)
#define MQTTSUBSCRIBE (8 << 4)
#define MQTTSUBACK (9 << 4)
#define MQTTUNSUBSCRIBE (10 << 4)
#define MQTTPINGREQ (12 << 4)
#define MQTTPINGRESP (13 << 4)
#define MQTTDISCONNECT (14 << 4)

#define MQTT_CALLBACK_SIGNATURE std::function<void(char*, uint8_t*, unsigned int)> callback

class PubSubClient {
 public:
  PubSubClient() {}
  explicit PubSubClient(Client& client) : _client(&client) {}
  PubSubClient& setServer(const char* domain, uint16_t port) {
    _domain = domain, _port = port;
    return *this;
  }
  PubSubClient& setServer(IPAddress ip, uint16_t port) {
    _ipText = ip.toString(), _domain = _ipText.c_str(), _port = port;
    return *this;
  }
  PubSubClient& setCallback(MQTT_CALLBACK_SIGNATURE) {
    _callback = callback;
    return *this;
  }
  PubSubClient& setClient(Client& client) {
    _client = &client;
    return *this;
  }
  PubSubClient& setKeepAlive(uint16_t s) {
    _keepAlive = s;
    return *this;
  }
  PubSubClient& setSocketTimeout(uint16_t s) {
    _socketTimeout = s;
    return *this;
  }

  boolean connect(const char* id) { return connect(id, nullptr, nullptr, nullptr, 0, false, nullptr, true); }
  boolean connect(const char* id, const char* user, const char* pass) {
    return connect(id, user, pass, nullptr, 0, false, nullptr, true);
  }
  boolean connect(const char* id, const char* willTopic, uint8_t willQos, boolean willRetain,
                  const char* willMessage) {
    return connect(id, nullptr, nullptr, willTopic, willQos, willRetain, willMessage, true);
  }
  boolean connect(const char* id, const char* user, const char* pass, const char* willTopic,
                  uint8_t willQos, boolean willRetain, const char* willMessage, boolean cleanSession);
  void disconnect();
  boolean publish(const char* topic, const char* payload) { return publish(topic, payload, false); }
  boolean publish(const char* topic, const char* payload, boolean retained) {
    return publish(topic, (const uint8_t*)payload, payload ? strlen(payload) : 0, retained);
  }
  boolean publish(const char* topic, const uint8_t* payload, unsigned int plength) {
    return publish(topic, payload, plength, false);
  }
  boolean publish(const char* topic, const uint8_t* payload, unsigned int plength, boolean retained);
  boolean subscribe(const char* topic, uint8_t qos = 0);
  boolean loop();
  boolean connected();
  int state() { return _state; }

 private:
  size_t frame(uint8_t header, uint16_t length);
  boolean send(uint8_t header, uint16_t length);
  boolean readByte(uint8_t* result);
  uint32_t readPacket(uint8_t* lengthLength);
  uint16_t writeString(const char* s, uint16_t pos);

  Client* _client = nullptr;
  uint8_t _buffer[MQTT_MAX_PACKET_SIZE];
  uint16_t _nextMsgId = 0;
  unsigned long _lastOutActivity = 0;
  unsigned long _lastInActivity = 0;
  bool _pingOutstanding = false;
  MQTT_CALLBACK_SIGNATURE;
  std::function<void(char*, uint8_t*, unsigned int)> _callback;
  const char* _domain = nullptr;
  String _ipText;
  uint16_t _port = 1883;
  uint16_t _keepAlive = MQTT_KEEPALIVE;
  uint16_t _socketTimeout = MQTT_SOCKET_TIMEOUT;
  int _state = MQTT_DISCONNECTED;
};

#endif
