/* telemetry.h - sy-telemetry's handler table (telemetry.c). */
#ifndef TELEMETRY_TELEMETRY_H
#define TELEMETRY_TELEMETRY_H

#include "sy/worker.h"

extern const struct sy_handler telemetry_handler;

#endif
