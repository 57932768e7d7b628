#include "PubSubClient.h"

// Packets are built in _buffer from offset 5 (room for the fixed header in front).
static const uint16_t HEAD = 5;

uint16_t PubSubClient::writeString(const char* s, uint16_t pos) {
  uint16_t n = (uint16_t)strlen(s);
  if (pos + 2 + n > MQTT_MAX_PACKET_SIZE) return pos;
  _buffer[pos++] = (uint8_t)(n >> 8);
  _buffer[pos++] = (uint8_t)n;
  memcpy(_buffer + pos, s, n);
  return pos + n;
}

// The fixed header right before the variable part at HEAD; returns where the packet starts.
size_t PubSubClient::frame(uint8_t header, uint16_t length) {
  uint8_t lenBuf[4];
  uint8_t n = 0;
  uint16_t len = length;
  do {
    uint8_t digit = len & 127;
    len >>= 7;
    if (len > 0) digit |= 0x80;
    lenBuf[n++] = digit;
  } while (len > 0);
  size_t start = HEAD - 1 - n;
  _buffer[start] = header;
  memcpy(_buffer + start + 1, lenBuf, n);
  return start;
}

boolean PubSubClient::send(uint8_t header, uint16_t length) {
  size_t start = frame(header, length);
  size_t total = HEAD - start + length;
  size_t written = _client->write(_buffer + start, total);
  _lastOutActivity = millis();
  return written == total;
}

boolean PubSubClient::readByte(uint8_t* result) {
  unsigned long previous = millis();
  while (!_client->available()) {
    yield();
    if (millis() - previous >= (unsigned long)_socketTimeout * 1000UL) return false;
  }
  *result = (uint8_t)_client->read();
  return true;
}

uint32_t PubSubClient::readPacket(uint8_t* lengthLength) {
  uint16_t len = 0;
  if (!readByte(&_buffer[len++])) return 0;
  uint32_t multiplier = 1, length = 0;
  uint8_t digit;
  do {
    if (len == 5) {
      _state = MQTT_DISCONNECTED;
      _client->stop();
      return 0;
    }
    if (!readByte(&digit)) return 0;
    _buffer[len++] = digit;
    length += (digit & 127) * multiplier;
    multiplier <<= 7;
  } while (digit & 128);
  *lengthLength = (uint8_t)(len - 1);
  for (uint32_t i = 0; i < length; i++) {
    if (!readByte(&digit)) return 0;
    if (len < MQTT_MAX_PACKET_SIZE) _buffer[len++] = digit;
  }
  return length + 1 + *lengthLength <= MQTT_MAX_PACKET_SIZE ? len : 0;
}

boolean PubSubClient::connect(const char* id, const char* user, const char* pass,
                              const char* willTopic, uint8_t willQos, boolean willRetain,
                              const char* willMessage, boolean cleanSession) {
  if (connected()) return true;
  int result = _client->connect(_domain, _port);
  if (result != 1) {
    _state = MQTT_CONNECT_FAILED;
    return false;
  }
  _nextMsgId = 1;
  uint16_t pos = HEAD;
  const uint8_t header[7] = {0x00, 0x04, 'M', 'Q', 'T', 'T', MQTT_VERSION_3_1_1};
  memcpy(_buffer + pos, header, sizeof header);
  pos += sizeof header;
  uint8_t flags = cleanSession ? 0x02 : 0x00;
  if (willTopic) flags |= 0x04 | (uint8_t)(willQos << 3) | (willRetain ? 0x20 : 0);
  if (user) flags |= 0x80;
  if (user && pass) flags |= 0x40;
  _buffer[pos++] = flags;
  _buffer[pos++] = (uint8_t)(_keepAlive >> 8);
  _buffer[pos++] = (uint8_t)_keepAlive;
  pos = writeString(id, pos);
  if (willTopic) {
    pos = writeString(willTopic, pos);
    pos = writeString(willMessage ? willMessage : "", pos);
  }
  if (user) pos = writeString(user, pos);
  if (user && pass) pos = writeString(pass, pos);
  send(MQTTCONNECT, (uint16_t)(pos - HEAD));
  _lastInActivity = _lastOutActivity = millis();
  while (!_client->available()) {
    unsigned long t = millis();
    if (t - _lastInActivity >= (unsigned long)_socketTimeout * 1000UL) {
      _state = MQTT_CONNECTION_TIMEOUT;
      _client->stop();
      return false;
    }
    yield();
  }
  uint8_t ll = 0;
  uint32_t len = readPacket(&ll);
  if (len == 4) {
    if (_buffer[3] == 0) {
      _lastInActivity = millis();
      _pingOutstanding = false;
      _state = MQTT_CONNECTED;
      return true;
    }
    _state = _buffer[3];
  }
  _client->stop();
  return false;
}

boolean PubSubClient::connected() {
  if (_client == nullptr) return false;
  if (_client->connected()) return _state == MQTT_CONNECTED;
  if (_state == MQTT_CONNECTED) {
    _state = MQTT_CONNECTION_LOST;
    _client->flush();
    _client->stop();
  }
  return false;
}

boolean PubSubClient::loop() {
  if (!connected()) return false;
  unsigned long t = millis();
  unsigned long ka = (unsigned long)_keepAlive * 1000UL;
  if (ka && (t - _lastInActivity > ka || t - _lastOutActivity > ka)) {
    if (_pingOutstanding) {
      _state = MQTT_CONNECTION_TIMEOUT;
      _client->stop();
      return false;
    }
    _buffer[0] = MQTTPINGREQ;
    _buffer[1] = 0;
    _client->write(_buffer, 2);
    _lastOutActivity = t;
    _lastInActivity = t;
    _pingOutstanding = true;
  }
  if (_client->available()) {
    uint8_t ll = 0;
    uint32_t len = readPacket(&ll);
    if (len > 0) {
      _lastInActivity = t;
      uint8_t type = _buffer[0] & 0xF0;
      if (type == MQTTPUBLISH && _callback) {
        uint16_t tl = (uint16_t)((_buffer[ll + 1] << 8) | _buffer[ll + 2]);
        memmove(_buffer + ll + 2, _buffer + ll + 3, tl);  // make room for a terminator
        _buffer[ll + 2 + tl] = 0;
        char* topic = (char*)_buffer + ll + 2;
        uint16_t payloadAt = ll + 3 + tl;
        if ((_buffer[0] & 0x06) != 0) {  // QoS 1: acknowledge
          uint16_t msgId = (uint16_t)((_buffer[payloadAt] << 8) | _buffer[payloadAt + 1]);
          payloadAt += 2;
          _callback(topic, _buffer + payloadAt, len - payloadAt);
          uint8_t ack[4] = {MQTTPUBACK, 2, (uint8_t)(msgId >> 8), (uint8_t)msgId};
          _client->write(ack, 4);
          _lastOutActivity = t;
        } else {
          _callback(topic, _buffer + payloadAt, len - payloadAt);
        }
      } else if (type == MQTTPINGREQ) {
        uint8_t resp[2] = {MQTTPINGRESP, 0};
        _client->write(resp, 2);
      } else if (type == MQTTPINGRESP) {
        _pingOutstanding = false;
      }
    } else if (!connected()) {
      return false;
    }
  }
  return true;
}

boolean PubSubClient::publish(const char* topic, const uint8_t* payload, unsigned int plength,
                              boolean retained) {
  if (!connected()) return false;
  uint16_t pos = writeString(topic, HEAD);
  if (pos + plength > MQTT_MAX_PACKET_SIZE) return false;
  memcpy(_buffer + pos, payload, plength);
  pos = (uint16_t)(pos + plength);
  return send(MQTTPUBLISH | (retained ? 1 : 0), (uint16_t)(pos - HEAD));
}

boolean PubSubClient::subscribe(const char* topic, uint8_t qos) {
  if (qos > 1 || !connected()) return false;
  uint16_t pos = HEAD;
  if (++_nextMsgId == 0) _nextMsgId = 1;
  _buffer[pos++] = (uint8_t)(_nextMsgId >> 8);
  _buffer[pos++] = (uint8_t)_nextMsgId;
  pos = writeString(topic, pos);
  _buffer[pos++] = qos;
  return send(MQTTSUBSCRIBE | 0x02, (uint16_t)(pos - HEAD));
}

void PubSubClient::disconnect() {
  _buffer[0] = MQTTDISCONNECT;
  _buffer[1] = 0;
  _client->write(_buffer, 2);
  _state = MQTT_DISCONNECTED;
  _client->flush();
  _client->stop();
  _lastInActivity = _lastOutActivity = millis();
}
