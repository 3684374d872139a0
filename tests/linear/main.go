// Command linear drives a concurrent read/write workload against the REST API of every node of an
// imlog cluster and checks the recorded history for linearizability with Porcupine.
//
// The object under test is a register per user (PREFIX0..): the user's nickname, written with
// /user/update_user_info and read with /user/get_users_info. Each client is bound to one node and
// does one operation at a time: a write of a fresh value or a read, on a random key. Faults
// (processes killed and restarted) are the caller's doing while this runs.
//
// Outcomes: errCode 0 is a completed operation. A write answered 500 or not answered at all (the
// connection broke, the leader died) may or may not have taken effect: it enters the history with
// no return time (Porcupine lets it take effect at any point after its call, or never). A read
// that fails is left out (it observed nothing). Any other answer fails the run.
//
// Prints "ops N writes W reads R unknown U" and "linearizable: true|false"; exits 1 when the
// history is not linearizable (with an HTML visualization written to -viz) or on a protocol error.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/anishathalye/porcupine"
)

type input struct {
	write bool
	key   string
	value string // the value written
}

type output struct {
	value string // the value read
}

type envelope struct {
	ErrCode int             `json:"errCode"`
	ErrDlt  string          `json:"errDlt"`
	Data    json.RawMessage `json:"data"`
}

type node struct {
	addr  string
	token string
}

// errNotSent: the node refused the connection, so the request never reached it.
var errNotSent = errors.New("connection refused")

// post sends one request; ok=false means the outcome is unknown (no answer, or 500), err ==
// errNotSent that it had none.
func post(c *http.Client, n *node, path string, body any, op string) (env envelope, ok bool, err error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", "http://"+n.addr+path, bytes.NewReader(b))
	req.Header.Set("operationID", op)
	req.Header.Set("Content-Type", "application/json")
	if n.token != "" {
		req.Header.Set("token", n.token)
	}
	resp, e := c.Do(req)
	if e != nil {
		if errors.Is(e, syscall.ECONNREFUSED) {
			return env, false, errNotSent
		}
		return env, false, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return env, false, nil
	}
	if e := json.NewDecoder(resp.Body).Decode(&env); e != nil {
		return env, false, nil
	}
	if env.ErrCode == 500 {
		return env, false, nil
	}
	if env.ErrCode != 0 {
		return env, true, fmt.Errorf("%s: errCode %d %s", path, env.ErrCode, env.ErrDlt)
	}
	return env, true, nil
}

var model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(input).key
			if _, seen := by[k]; !seen {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() interface{} { return "init" },
	Step: func(state, in, out interface{}) (bool, interface{}) {
		i := in.(input)
		if i.write {
			return true, i.value
		}
		return out.(output).value == state.(string), state
	},
	Equal: func(a, b interface{}) bool { return a.(string) == b.(string) },
	DescribeOperation: func(in, out interface{}) string {
		i := in.(input)
		if i.write {
			return fmt.Sprintf("set %s=%s", i.key, i.value)
		}
		return fmt.Sprintf("get %s -> %s", i.key, out.(output).value)
	},
}

func main() {
	nodes := flag.String("nodes", "", "REST addresses HOST:PORT,... (clients are spread over them)")
	secret := flag.String("secret", "", "the cluster's admin secret")
	seconds := flag.Float64("seconds", 10, "how long the workload runs")
	clients := flag.Int("clients", 6, "concurrent clients (reads and writes)")
	readers := flag.Int("readers", 0, "more clients that only read (they never block on a write, "+
		"so they go on reading from a node cut off from the others)")
	keys := flag.Int("keys", 4, "registers (users PREFIX0..PREFIXK-1, registered with nickname init)")
	prefix := flag.String("prefix", "lin", "the registers' user id prefix")
	seed := flag.Int64("seed", time.Now().UnixNano(), "random seed")
	viz := flag.String("viz", "", "where to write the visualization of a failed check")
	flag.Parse()
	fmt.Printf("seed %d\n", *seed)

	hc := &http.Client{Timeout: 10 * time.Second}
	var ns []*node
	for _, a := range strings.Split(*nodes, ",") {
		n := &node{addr: a}
		env, ok, err := post(hc, n, "/auth/get_admin_token",
			map[string]string{"secret": *secret, "userID": "imAdmin"}, "lin-token")
		var d struct{ Token string }
		if err != nil || !ok || json.Unmarshal(env.Data, &d) != nil || d.Token == "" {
			fmt.Fprintf(os.Stderr, "admin token from %s: %v\n", a, err)
			os.Exit(2)
		}
		n.token = d.Token
		ns = append(ns, n)
	}

	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		unknown int
		failure error
		wg      sync.WaitGroup
	)
	deadline := start.Add(time.Duration(*seconds * float64(time.Second)))
	// Client ids: writers 0..clients-1 (then +k*total after an unknown write), readers after
	// them; the node of client id i is i % len(nodes) (total is a multiple of it).
	total := *clients + *readers
	total += (len(ns) - total%len(ns)) % len(ns)
	for cl := 0; cl < *clients+*readers; cl++ {
		wg.Add(1)
		readOnly := cl >= *clients
		go func(cl int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(*seed + int64(cl)))
			n := ns[cl%len(ns)]
			c := &http.Client{Timeout: 10 * time.Second}
			for i := 0; time.Now().Before(deadline); i++ {
				key := fmt.Sprintf("%s%d", *prefix, rng.Intn(*keys))
				opid := fmt.Sprintf("lin-%d-%d", cl, i)
				in := input{key: key, write: !readOnly && rng.Intn(2) == 0}
				call := now()
				if in.write {
					in.value = fmt.Sprintf("c%d-%d", cl, i)
					_, ok, err := post(c, n, "/user/update_user_info",
						map[string]any{"userInfo": map[string]any{"userID": key, "nickname": in.value}}, opid)
					ret := now()
					if err == errNotSent {
						time.Sleep(50 * time.Millisecond) // the node is down: back off
						continue
					}
					mu.Lock()
					if err != nil && failure == nil {
						failure = err
					}
					if !ok {
						unknown++
						ret = math.MaxInt64 // may take effect at any time after the call, or never
					}
					history = append(history, porcupine.Operation{ClientId: cl, Input: in, Call: call,
						Output: output{}, Return: ret})
					mu.Unlock()
					if !ok {
						// A fresh client id: a client's operations must not overlap, and this one
						// never returns.
						cl += total
						time.Sleep(50 * time.Millisecond)
					}
					continue
				}
				env, ok, err := post(c, n, "/user/get_users_info", map[string]any{"userIDs": []string{key}}, opid)
				ret := now()
				var d struct {
					UsersInfo []struct {
						UserID   string `json:"userID"`
						Nickname string `json:"nickname"`
					} `json:"usersInfo"`
				}
				if err == nil && ok && (json.Unmarshal(env.Data, &d) != nil || len(d.UsersInfo) != 1) {
					err = fmt.Errorf("get_users_info %s: %s", key, env.Data)
				}
				if err == errNotSent {
					err = nil // the node is down: nothing observed
				}
				mu.Lock()
				if err != nil && failure == nil {
					failure = err
				}
				if ok && err == nil {
					history = append(history, porcupine.Operation{ClientId: cl, Input: in, Call: call,
						Output: output{value: d.UsersInfo[0].Nickname}, Return: ret})
				}
				mu.Unlock()
				if !ok {
					time.Sleep(50 * time.Millisecond) // no answer: back off
				}
			}
		}(cl)
	}
	wg.Wait()
	if failure != nil {
		fmt.Fprintf(os.Stderr, "protocol error: %v\n", failure)
		os.Exit(1)
	}
	writes, reads := 0, 0
	for _, op := range history {
		if op.Input.(input).write {
			writes++
		} else {
			reads++
		}
	}
	fmt.Printf("ops %d writes %d reads %d unknown %d\n", len(history), writes, reads, unknown)
	res, info := porcupine.CheckOperationsVerbose(model, history, 60*time.Second)
	fmt.Printf("linearizable: %v\n", res == porcupine.Ok)
	if res == porcupine.Unknown {
		fmt.Println("the check timed out (60 s): no verdict")
	}
	if res != porcupine.Ok {
		// The registers that fail on their own, with their operations in call order.
		for _, part := range model.Partition(history) {
			one := model
			one.Partition = nil
			if porcupine.CheckOperations(one, part) {
				continue
			}
			sort.Slice(part, func(i, j int) bool { return part[i].Call < part[j].Call })
			fmt.Printf("register %s is not linearizable; its operations (ms, client%%nodes = node):\n",
				part[0].Input.(input).key)
			for _, op := range part {
				ret := "never"
				if op.Return != math.MaxInt64 {
					ret = fmt.Sprintf("%.1f", float64(op.Return)/1e6)
				}
				fmt.Printf("  %8.1f %8s client %d node %d: %s\n", float64(op.Call)/1e6, ret,
					op.ClientId, op.ClientId%len(ns), model.DescribeOperation(op.Input, op.Output))
			}
		}
		if *viz != "" {
			if f, err := os.Create(*viz); err == nil {
				porcupine.Visualize(model, info, f)
				f.Close()
				fmt.Printf("visualization: %s\n", *viz)
			}
		}
		os.Exit(1)
	}
}
