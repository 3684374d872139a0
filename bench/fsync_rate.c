/* fsync_rate.c - the physical limit: how many 4 KiB append+fdatasync cycles the data disk does per
 * second. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";
	double seconds = argc > 2 ? atof(argv[2]) : 3.0;
	char path[4096];
	snprintf(path, sizeof(path), "%s/fsync-rate.tmp", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	char block[4096];
	memset(block, 'x', sizeof(block));
	long n = 0;
	double start = now_s(), end = start + seconds;
	while (now_s() < end) {
		if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block) ||
		    fdatasync(fd) != 0) {
			perror("write/fdatasync");
			return 1;
		}
		n++;
	}
	double took = now_s() - start;
	close(fd);
	unlink(path);
	printf("fdatasync_per_s %.0f (4 KiB appends, %ld in %.2f s, dir %s)\n", (double)n / took, n,
	       took, dir);
	return 0;
}
