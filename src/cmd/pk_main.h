/* ferry run with pkthere's command line (pk_main.c). */
#ifndef FERRY_CMD_PK_MAIN_H
#define FERRY_CMD_PK_MAIN_H

/* Runs the single-client forwarder; returns the process exit status (spec/pkthere.md §1.5). */
int pk_main(int argc, char **argv);

#endif
