/* cli.h - the imlog command line's subcommands outside serve. */
#ifndef IM_CLI_H
#define IM_CLI_H

/* imlog cluster status|add|remove [flags] (cli_cluster.c); returns the exit code. */
int cli_cluster(int argc, char **argv);

#endif
