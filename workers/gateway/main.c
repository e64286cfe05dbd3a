/* main.c - sy-gateway: the HTTP front door; each accepted request becomes a message the broker
 * confirmed before the client hears 2xx. */
#include "gateway.h"
#include "sy/worker.h"

int main(int argc, char **argv)
{
    return sy_worker_main(&gateway_handler, argc, argv);
}
