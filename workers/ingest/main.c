/* main.c - sy-ingest: documents from mailboxes into the file store and PostgreSQL. */
#include "ingest/ingest.h"
#include "sy/worker.h"

int main(int argc, char **argv)
{
    return sy_worker_main(&ingest_handler, argc, argv);
}
