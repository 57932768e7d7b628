// Busy-waiting on millis() must see simulated time pass, without delay().
void setup() {
  Serial.begin(115200);
  unsigned long start = millis();
  while (millis() - start < 1500) {
  }
  Serial.printf("spun until %lu ms\n", millis());
}

void loop() {
  unsigned long start = millis();
  while (millis() - start < 1000) {
    yield();
  }
  Serial.println("tick");
}
