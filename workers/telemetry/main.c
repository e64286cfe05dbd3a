/* main.c - sy-telemetry: plant readings from MQTT into Redis and PostgreSQL, with alerts. */
#include "telemetry/telemetry.h"

int main(int argc, char **argv)
{
    return sy_worker_main(&telemetry_handler, argc, argv);
}
