/* main.c - sy-grievance: grievances into PostgreSQL and the legacy GRM, status both ways. */
#include "grievance.h"
#include "sy/worker.h"

int main(int argc, char **argv)
{
    return sy_worker_main(&grievance_handler, argc, argv);
}
