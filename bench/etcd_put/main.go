// etcd_put: the etcd side of the side-by-side benchmarks over etcd's native gRPC API (the
// client library etcd ships), like etcd's own "benchmark put": CONNS clients, each with
// WINDOW puts in flight over a shared set of gRPC connections, unique keys, VALUE bytes per
// value, a warm-up and then SECONDS measured.  Prints the same "key value" lines as loadgen.
// Usage: etcd_put -endpoints http://127.0.0.1:2379[,...] [-clients 64] [-conns 8]
//
//	[-seconds 10] [-warmup 1] [-size 200]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func main() {
	endpoints := flag.String("endpoints", "http://127.0.0.1:2379", "comma-separated client URLs")
	clients := flag.Int("clients", 64, "concurrent clients (one put in flight each)")
	conns := flag.Int("conns", 8, "gRPC connections shared by the clients")
	seconds := flag.Float64("seconds", 10, "measured seconds")
	warmup := flag.Float64("warmup", 1, "warm-up seconds")
	size := flag.Int("size", 200, "value bytes")
	flag.Parse()

	cs := make([]*clientv3.Client, *conns)
	for i := range cs {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   strings.Split(*endpoints, ","),
			DialTimeout: 5 * time.Second,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcd_put:", err)
			os.Exit(1)
		}
		defer c.Close()
		cs[i] = c
	}
	value := strings.Repeat("v", *size)
	start := time.Now()
	mStart := start.Add(time.Duration(*warmup * float64(time.Second)))
	mEnd := mStart.Add(time.Duration(*seconds * float64(time.Second)))
	var mu sync.Mutex
	var lat []time.Duration
	var errs, inWindow int64
	var wg sync.WaitGroup
	for w := 0; w < *clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := cs[w%len(cs)]
			var mine []time.Duration
			var n, e, in int64
			for {
				t := time.Now()
				if !t.Before(mEnd) {
					break
				}
				_, err := c.Put(context.Background(), fmt.Sprintf("k%d-%d", w, n), value)
				n++
				done := time.Now()
				if err != nil {
					e++
					continue
				}
				if !t.Before(mStart) {
					mine = append(mine, done.Sub(t))
				}
				if !done.Before(mStart) && done.Before(mEnd) {
					in++
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += e
			inWindow += in
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := int(p * float64(len(lat)))
		if i >= len(lat) {
			i = len(lat) - 1
		}
		return float64(lat[i]) / 1e6
	}
	fmt.Printf("etcd_put endpoints=%s clients=%d conns=%d size=%d seconds=%.1f warmup=%.1f\n",
		*endpoints, *clients, *conns, *size, *seconds, *warmup)
	fmt.Printf("errors %d\nput_throughput_per_s %.0f\n", errs, float64(inWindow) / *seconds)
	fmt.Printf("put_latency_p50_ms %.3f\nput_latency_p90_ms %.3f\nput_latency_p99_ms %.3f\n", q(0.5), q(0.9), q(0.99))
	if len(lat) > 0 {
		fmt.Printf("put_latency_max_ms %.3f\n", float64(lat[len(lat)-1])/1e6)
	}
	fmt.Printf("put_latency_samples %d\n", len(lat))
}
