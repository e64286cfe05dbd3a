/* main.c - sy-glpi: Chatwoot contacts, conversations and messages mirrored into GLPI. */
#include "glpi/glpi.h"
#include "sy/worker.h"

int main(int argc, char **argv)
{
    return sy_worker_main(&glpi_handler, argc, argv);
}
