/* main.c - sy-scheduler: periodic job messages, each tick published exactly once however many
 * replicas run. */
#include "scheduler.h"

int main(int argc, char **argv)
{
    return sy_worker_main(&scheduler_handler, argc, argv);
}
