#include <WiFi.h>

void setup() {
  Serial.begin(115200);
  int x = "not a number";
}

void loop() {}
