// The reference device of the write-up as an Arduino sketch: an ESP32 with a DHT22 that joins
// WiFi, connects to the broker with PubSubClient and publishes temperature and humidity every 2 s
// to ESP32/TEM and ESP32/HUM at QoS 0 (PubSubClient publishes QoS 0 only).
#include <WiFi.h>
#include <PubSubClient.h>
#include <DHT.h>

#define DHTPIN 4
#define DHTTYPE DHT22

const char* ssid = "yourNetworkName";
const char* password = "yourNetworkPassword";
const char* mqttServer = "192.168.100.103";
const int mqttPort = 1883;

WiFiClient espClient;
PubSubClient client(espClient);
DHT dht(DHTPIN, DHTTYPE);

long lastMsg = 0;
char msg[20];

void reconnect() {
  while (!client.connected()) {
    Serial.println("Connecting to MQTT...");
    // A client id of its own per board (as PubSubClient's examples make one).
    String clientId = "ESP32Client-";
    clientId += String(random(0xffff), HEX);
    if (client.connect(clientId.c_str())) {
      Serial.println("connected");
    } else {
      Serial.print("failed with state ");
      Serial.println(client.state());
      delay(2000);
    }
  }
}

void setup() {
  Serial.begin(115200);
  dht.begin();
  WiFi.begin(ssid, password);
  Serial.println("Connecting to WiFi");
  while (WiFi.status() != WL_CONNECTED) {
    delay(500);
    Serial.print(".");
  }
  Serial.println("");
  Serial.println("Connected to the WiFi network");
  client.setServer(mqttServer, mqttPort);
  reconnect();
}

void loop() {
  if (!client.connected()) {
    reconnect();
  }
  client.loop();

  long now = millis();
  if (now - lastMsg > 2000) {
    lastMsg = now;
    float temperature = dht.readTemperature();
    float humidity = dht.readHumidity();
    if (isnan(temperature) || isnan(humidity)) {
      Serial.println("Failed to read from DHT sensor!");
      return;
    }
    Serial.println("Publish message:");
    Serial.print("Temperature : ");
    Serial.print(temperature);
    Serial.println("°C");
    Serial.print("Humidity : ");
    Serial.print(humidity);
    Serial.println("%");
    dtostrf(temperature, 1, 2, msg);
    client.publish("ESP32/TEM", msg);
    dtostrf(humidity, 1, 2, msg);
    client.publish("ESP32/HUM", msg);
  }
}
