// Each device's globals are its own: a counter printed every second, and a client id of its own.
#include <WiFi.h>

int counter = 0;
static char name[16];

void setup() {
  Serial.begin(115200);
  snprintf(name, sizeof name, "board-%04lx", random(0x10000));
  WiFi.begin("ssid", "password");
  while (WiFi.status() != WL_CONNECTED) {
    delay(100);
  }
  Serial.printf("%s up at %lu ms\n", name, millis());
}

void loop() {
  counter++;
  Serial.print(name);
  Serial.print(" count ");
  Serial.println(counter);
  delay(1000);
}
