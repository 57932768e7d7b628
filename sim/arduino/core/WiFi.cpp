#include "WiFi.h"

WiFiClass WiFi;
