#include <WiFi.h>
#include <NoSuchLibrary.h>

void setup() {}
void loop() {}
