// sdkgo drives the REAL OpenIM native SDK (github.com/openimsdk/openim-sdk-core/v3, GPL-3.0,
// fetched through the Go module proxy at build time, test-only, never vendored or committed)
// against a running imlog, as one logged-in user per process: the SDK keeps its state in a
// package-level singleton (open_im_sdk.UserForSDK), so several users mean several processes.
//
// The SDK talks gob envelopes (gzip-compressed) over WebSocket to the gateway and JSON over
// REST to the API (openim-protocol.md §4.9, §10).
//
// Configuration: the JSON in $IMLOG_SDKGO_CONFIG, or in the file named by -config:
//
//	{"apiAddr": "http://127.0.0.1:10002", "wsAddr": "ws://127.0.0.1:10001",
//	 "platformID": 2, "dataDir": "/tmp/x", "logLevel": 5,
//	 "userID": "u1", "token": "...", "scenario": "chat", "deadlineMs": 20000,
//	 "steps": [{"op": "send", "to": "u2", "text": "hi"},
//	           {"op": "expect", "from": "u2", "text": "hi back"},
//	           {"op": "wait_line"}, {"op": "logout"}]}
//
// It logs in, waits for OnConnectSuccess and OnSyncServerFinish (event "ready"), then runs the
// steps in order, each with the deadline:
//
//	send       {to | group, text}: CreateTextMessage + SendMessage; event "sent" from the callback
//	expect     {from, group?, text}: waits for a received message (OnRecvNewMessage or the offline
//	           variant, also one that arrived before this step); event "expect_ok"
//	expect_latest {from, text, synced?}: waits for OnNewConversation/OnConversationChanged with
//	           that latest message (how a fresh SDK database learns of history); with synced, the
//	           server's copy (seq > 0: the SDK has taken in the push of its own message); event
//	           "expect_ok"
//	idle       {ms}: stays logged in that long; fails on any reconnect or kick; event "idle_ok"
//	wait_line  waits for one line on stdin (the test's go-ahead); event "line"
//	call       {method, args}: one SDK function of the table `calls` (group and conversation
//	           setters and getters); fails on an error callback; event "call_ok" {method, data}
//	expect_event {event, match}: waits for a listener event (e.g. "group_info_changed") whose
//	           JSON data has every field of match (top-level fields, compared as JSON values),
//	           also one that arrived before this step; event "expect_ok"
//	logout     Logout (WS 2003); event "logged_out"
//
// Every SDK callback is printed as one JSON line on stdout ({"t": ms, "event": ..., ...});
// the SDK's own log goes to files in dataDir/log (and its fmt.Println chatter to stderr). The
// last line is {"event":"result","ok":true} (exit 0) or {"event":"fail","error":...} (exit 1).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	sdk "github.com/openimsdk/openim-sdk-core/v3/open_im_sdk"
)

type step struct {
	Op    string `json:"op"`
	To    string `json:"to,omitempty"`
	Group string `json:"group,omitempty"`
	From  string `json:"from,omitempty"`
	Text  string `json:"text,omitempty"`
	Ms    int    `json:"ms,omitempty"`
	// expect_latest: also require the server's copy (seq > 0), e.g. of one's own message
	Synced bool `json:"synced,omitempty"`
	// call and expect_event
	Method string         `json:"method,omitempty"`
	Args   []any          `json:"args,omitempty"`
	Event  string         `json:"event,omitempty"`
	Match  map[string]any `json:"match,omitempty"`
}

type config struct {
	APIAddr    string `json:"apiAddr"`
	WsAddr     string `json:"wsAddr"`
	PlatformID int32  `json:"platformID"`
	DataDir    string `json:"dataDir"`
	LogLevel   uint32 `json:"logLevel"`
	UserID     string `json:"userID"`
	Token      string `json:"token"`
	Scenario   string `json:"scenario"`
	DeadlineMs int    `json:"deadlineMs"`
	Steps      []step `json:"steps"`
}

// ---- output

var (
	outMu sync.Mutex
	out   *os.File
	t0    = time.Now()
)

func emit(event string, fields map[string]any) {
	m := map[string]any{"t": time.Since(t0).Milliseconds(), "event": event}
	for k, v := range fields {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"event":"marshal_error","error":%q}`, err.Error()))
	}
	outMu.Lock()
	out.Write(append(b, '\n'))
	outMu.Unlock()
}

func fail(format string, args ...any) {
	emit("fail", map[string]any{"error": fmt.Sprintf(format, args...)})
	os.Exit(1)
}

// ---- events from the SDK, fanned in to the step runner

type event struct {
	name string
	msg  *msgSummary
	code int32
	text string
	data any // the decoded JSON of a listener event (noteJSON)
}

type msgSummary struct {
	ClientMsgID string `json:"clientMsgID"`
	ServerMsgID string `json:"serverMsgID"`
	SendID      string `json:"sendID"`
	RecvID      string `json:"recvID"`
	GroupID     string `json:"groupID,omitempty"`
	SessionType int32  `json:"sessionType"`
	ContentType int32  `json:"contentType"`
	Seq         int64  `json:"seq"`
	SendTime    int64  `json:"sendTime"`
	Text        string `json:"text"`
}

func summarize(raw string) (*msgSummary, error) {
	var m struct {
		msgSummary
		TextElem *struct {
			Content string `json:"content"`
		} `json:"textElem"`
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, err
	}
	s := m.msgSummary
	if m.TextElem != nil {
		s.Text = m.TextElem.Content
	}
	return &s, nil
}

var events = make(chan event, 1024)

func post(ev event) {
	select {
	case events <- ev:
	default: // the runner is not keeping up; the line on stdout is the record
	}
}

func note(name string, fields map[string]any) {
	emit(name, fields)
	post(event{name: name})
}

func noteJSON(name, data string) {
	var v any
	if json.Unmarshal([]byte(data), &v) != nil {
		v = data
	}
	emit(name, map[string]any{"data": v})
	post(event{name: name, data: v})
}

// noteConversations also posts each conversation's latest message as "conv_latest" (for the
// expect_latest step: a fresh SDK database syncs history without OnRecvNewMessage).
func noteConversations(name, data string) {
	noteJSON(name, data)
	var convs []struct {
		ConversationID string `json:"conversationID"`
		LatestMsg      string `json:"latestMsg"`
		UnreadCount    int32  `json:"unreadCount"`
	}
	if json.Unmarshal([]byte(data), &convs) != nil {
		return
	}
	for _, c := range convs {
		if c.LatestMsg == "" {
			continue
		}
		if s, err := summarize(c.LatestMsg); err == nil {
			post(event{name: "conv_latest", msg: s, code: c.UnreadCount, text: c.ConversationID})
		}
	}
}

func noteMsg(name, raw string) {
	s, err := summarize(raw)
	if err != nil {
		emit("bad_message", map[string]any{"via": name, "error": err.Error(), "raw": raw})
		return
	}
	emit("recv", map[string]any{"via": name, "msg": s})
	post(event{name: "recv", msg: s})
}

type connListener struct{}

func (connListener) OnConnecting()     { note("connecting", nil) }
func (connListener) OnConnectSuccess() { note("connect_success", nil) }
func (connListener) OnConnectFailed(code int32, msg string) {
	emit("connect_failed", map[string]any{"errCode": code, "errMsg": msg})
	post(event{name: "connect_failed", code: code, text: msg})
}
func (connListener) OnKickedOffline()    { note("kicked_offline", nil) }
func (connListener) OnUserTokenExpired() { note("token_expired", nil) }
func (connListener) OnUserTokenInvalid(msg string) {
	note("token_invalid", map[string]any{"errMsg": msg})
}

type convListener struct{}

func (convListener) OnSyncServerStart(re bool) { note("sync_start", map[string]any{"reinstalled": re}) }
func (convListener) OnSyncServerFinish(re bool) {
	note("sync_finish", map[string]any{"reinstalled": re})
}
func (convListener) OnSyncServerProgress(p int) { emit("sync_progress", map[string]any{"progress": p}) }
func (convListener) OnSyncServerFailed(re bool) {
	note("sync_failed", map[string]any{"reinstalled": re})
}
func (convListener) OnNewConversation(s string)     { noteConversations("new_conversation", s) }
func (convListener) OnConversationChanged(s string) { noteConversations("conversation_changed", s) }
func (convListener) OnTotalUnreadMessageCountChanged(n int32) {
	emit("total_unread", map[string]any{"count": n})
}
func (convListener) OnConversationUserInputStatusChanged(s string) { noteJSON("input_status", s) }

type msgListener struct{}

func (msgListener) OnRecvNewMessage(m string)        { noteMsg("OnRecvNewMessage", m) }
func (msgListener) OnRecvOfflineNewMessage(m string) { noteMsg("OnRecvOfflineNewMessage", m) }
func (msgListener) OnRecvOnlineOnlyMessage(m string) { noteMsg("OnRecvOnlineOnlyMessage", m) }
func (msgListener) OnRecvC2CReadReceipt(s string)    { noteJSON("c2c_read_receipt", s) }
func (msgListener) OnNewRecvMessageRevoked(s string) { noteJSON("revoked", s) }
func (msgListener) OnMsgDeleted(s string)            { noteJSON("msg_deleted", s) }

type groupListener struct{}

func (groupListener) OnJoinedGroupAdded(s string)         { noteJSON("joined_group_added", s) }
func (groupListener) OnJoinedGroupDeleted(s string)       { noteJSON("joined_group_deleted", s) }
func (groupListener) OnGroupMemberAdded(s string)         { noteJSON("group_member_added", s) }
func (groupListener) OnGroupMemberDeleted(s string)       { noteJSON("group_member_deleted", s) }
func (groupListener) OnGroupApplicationAdded(s string)    { noteJSON("group_application_added", s) }
func (groupListener) OnGroupApplicationDeleted(s string)  { noteJSON("group_application_deleted", s) }
func (groupListener) OnGroupInfoChanged(s string)         { noteJSON("group_info_changed", s) }
func (groupListener) OnGroupDismissed(s string)           { noteJSON("group_dismissed", s) }
func (groupListener) OnGroupMemberInfoChanged(s string)   { noteJSON("group_member_info_changed", s) }
func (groupListener) OnGroupApplicationAccepted(s string) { noteJSON("group_application_accepted", s) }
func (groupListener) OnGroupApplicationRejected(s string) { noteJSON("group_application_rejected", s) }

// callback answers one SDK call (Login, Logout, SendMessage) on its own channel.
type callback struct {
	name string
	done chan event
}

func newCallback(name string) *callback { return &callback{name: name, done: make(chan event, 1)} }

func (c *callback) OnError(code int32, msg string) {
	c.done <- event{name: "error", code: code, text: msg}
}
func (c *callback) OnSuccess(data string) { c.done <- event{name: "success", text: data} }
func (c *callback) OnProgress(int)        {}

func (c *callback) wait(deadline time.Time) event {
	select {
	case ev := <-c.done:
		return ev
	case <-time.After(time.Until(deadline)):
		fail("%s: no callback before the deadline", c.name)
	}
	return event{}
}

// ---- SDK calls by name (args as JSON values: strings, numbers, bools; lists as JSON text)

func argStr(a []any, i int) string {
	if i >= len(a) {
		fail("call: missing argument %d", i)
	}
	switch v := a[i].(type) {
	case string:
		return v
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func argInt(a []any, i int) int {
	if i >= len(a) {
		fail("call: missing argument %d", i)
	}
	f, ok := a[i].(float64)
	if !ok {
		fail("call: argument %d is not a number", i)
	}
	return int(f)
}

var calls = map[string]func(cb *callback, op string, a []any){
	"SetGroupInfo":       func(cb *callback, op string, a []any) { sdk.SetGroupInfo(cb, op, argStr(a, 0)) },
	"SetGroupMemberInfo": func(cb *callback, op string, a []any) { sdk.SetGroupMemberInfo(cb, op, argStr(a, 0)) },
	"JoinGroup": func(cb *callback, op string, a []any) {
		sdk.JoinGroup(cb, op, argStr(a, 0), argStr(a, 1), int32(argInt(a, 2)), argStr(a, 3))
	},
	"AcceptGroupApplication": func(cb *callback, op string, a []any) {
		sdk.AcceptGroupApplication(cb, op, argStr(a, 0), argStr(a, 1), argStr(a, 2))
	},
	"ChangeGroupMemberMute": func(cb *callback, op string, a []any) {
		sdk.ChangeGroupMemberMute(cb, op, argStr(a, 0), argStr(a, 1), argInt(a, 2))
	},
	"TransferGroupOwner": func(cb *callback, op string, a []any) {
		sdk.TransferGroupOwner(cb, op, argStr(a, 0), argStr(a, 1))
	},
	"GetJoinedGroupList": func(cb *callback, op string, a []any) { sdk.GetJoinedGroupList(cb, op) },
	"GetGroupMemberList": func(cb *callback, op string, a []any) {
		sdk.GetGroupMemberList(cb, op, argStr(a, 0), 0, 0, 1000)
	},
	"SetConversation": func(cb *callback, op string, a []any) {
		sdk.SetConversation(cb, op, argStr(a, 0), argStr(a, 1))
	},
}

// matches reports whether data (a decoded JSON object) has every field of want.
func matches(data any, want map[string]any) bool {
	obj, ok := data.(map[string]any)
	if !ok {
		return false
	}
	for k, w := range want {
		a, _ := json.Marshal(obj[k])
		b, _ := json.Marshal(w)
		if string(a) != string(b) {
			return false
		}
	}
	return true
}

// ---- the step runner

type runner struct {
	cfg      config
	deadline time.Duration
	seen     []event // every event so far, in order
	opSeq    int
	stdin    *bufio.Reader
}

func (r *runner) opID(what string) string {
	r.opSeq++
	return fmt.Sprintf("sdkgo-%s-%s-%d-%d", r.cfg.UserID, what, os.Getpid(), r.opSeq)
}

// waitFor returns the first event at index >= from satisfying pred, reading more as needed.
func (r *runner) waitFor(what string, from int, pred func(event) bool) (int, event) {
	end := time.Now().Add(r.deadline)
	for i := from; ; i++ {
		for i >= len(r.seen) {
			select {
			case ev := <-events:
				r.seen = append(r.seen, ev)
				switch ev.name {
				case "kicked_offline", "token_expired", "token_invalid":
					fail("%s while waiting for %s", ev.name, what)
				}
			case <-time.After(time.Until(end)):
				fail("no %s within %v", what, r.deadline)
			}
		}
		if pred(r.seen[i]) {
			return i, r.seen[i]
		}
	}
}

func (r *runner) login() {
	cb := newCallback("Login")
	sdk.Login(cb, r.opID("login"), r.cfg.UserID, r.cfg.Token)
	if ev := cb.wait(time.Now().Add(r.deadline)); ev.name != "success" {
		fail("Login: %d %s", ev.code, ev.text)
	}
	emit("login_ok", nil)
	r.waitFor("connect_success", 0, func(e event) bool {
		if e.name == "connect_failed" {
			fail("connect failed: %d %s", e.code, e.text)
		}
		return e.name == "connect_success"
	})
	r.waitFor("sync_finish", 0, func(e event) bool {
		if e.name == "sync_failed" {
			fail("sync failed")
		}
		return e.name == "sync_finish"
	})
	emit("ready", map[string]any{"userID": r.cfg.UserID})
}

func (r *runner) run(s step) {
	switch s.Op {
	case "send":
		if (s.To == "") == (s.Group == "") {
			fail("send needs exactly one of to/group: %+v", s)
		}
		op := r.opID("send")
		msg := sdk.CreateTextMessage(op, s.Text)
		if msg == "" {
			fail("CreateTextMessage returned nothing")
		}
		cb := newCallback("SendMessage")
		// The offline push info is parsed as JSON by the SDK ("" is an error); apps pass one.
		push := `{"title":"new message","desc":"","ex":"","iOSPushSound":"default","iOSBadgeCount":true}`
		sdk.SendMessage(cb, op, msg, s.To, s.Group, push, false)
		ev := cb.wait(time.Now().Add(r.deadline))
		if ev.name != "success" {
			fail("SendMessage to %q/%q: %d %s", s.To, s.Group, ev.code, ev.text)
		}
		sum, err := summarize(ev.text)
		if err != nil {
			fail("SendMessage result: %v: %s", err, ev.text)
		}
		if sum.ServerMsgID == "" || sum.SendTime <= 0 || sum.Text != s.Text {
			fail("SendMessage result incomplete: %s", ev.text)
		}
		emit("sent", map[string]any{"msg": sum, "operationID": op})
	case "expect":
		_, ev := r.waitFor(fmt.Sprintf("message %q from %s", s.Text, s.From), 0, func(e event) bool {
			m := e.msg
			return e.name == "recv" && m != nil && m.Text == s.Text &&
				(s.From == "" || m.SendID == s.From) && (s.Group == "" || m.GroupID == s.Group)
		})
		m := ev.msg
		if m.ServerMsgID == "" || m.Seq <= 0 || m.SendTime <= 0 {
			fail("received message incomplete: %+v", *m)
		}
		want := int32(1)
		if s.Group != "" {
			want = 3
		}
		if m.SessionType != want || m.ContentType != 101 {
			fail("received message: sessionType %d contentType %d, want %d/101", m.SessionType,
				m.ContentType, want)
		}
		if s.Group == "" && m.RecvID != r.cfg.UserID {
			fail("received message: recvID %q, want %q", m.RecvID, r.cfg.UserID)
		}
		emit("expect_ok", map[string]any{"msg": m})
	case "expect_latest":
		_, ev := r.waitFor(fmt.Sprintf("a conversation whose latest message is %q from %s", s.Text, s.From), 0,
			func(e event) bool {
				return e.name == "conv_latest" && e.msg.Text == s.Text &&
					(s.From == "" || e.msg.SendID == s.From) && (!s.Synced || e.msg.Seq > 0)
			})
		emit("expect_ok", map[string]any{"conversationID": ev.text, "unreadCount": ev.code, "msg": ev.msg})
	case "idle":
		// Stays connected for ms without sending anything of its own (the SDK's heartbeat is a
		// WS Ping control frame every 24 s); any reconnect or kick meanwhile fails the step.
		from := len(r.seen)
		end := time.Now().Add(time.Duration(s.Ms) * time.Millisecond)
		for time.Now().Before(end) {
			select {
			case ev := <-events:
				r.seen = append(r.seen, ev)
			case <-time.After(time.Until(end)):
			}
		}
		for _, ev := range r.seen[from:] {
			switch ev.name {
			case "connecting", "connect_failed", "kicked_offline", "token_expired", "token_invalid":
				fail("%s while idle", ev.name)
			}
		}
		emit("idle_ok", map[string]any{"ms": s.Ms})
	case "wait_line":
		emit("waiting_line", nil)
		line, err := r.stdin.ReadString('\n')
		if err != nil && line == "" {
			fail("stdin closed while waiting for a line: %v", err)
		}
		emit("line", map[string]any{"text": strings.TrimSpace(line)})
	case "call":
		fn, ok := calls[s.Method]
		if !ok {
			fail("call: unknown method %q", s.Method)
		}
		cb := newCallback(s.Method)
		fn(cb, r.opID(s.Method), s.Args)
		ev := cb.wait(time.Now().Add(r.deadline))
		if ev.name != "success" {
			fail("%s: %d %s", s.Method, ev.code, ev.text)
		}
		var v any
		if json.Unmarshal([]byte(ev.text), &v) != nil {
			v = ev.text
		}
		emit("call_ok", map[string]any{"method": s.Method, "data": v})
	case "expect_event":
		_, ev := r.waitFor(fmt.Sprintf("%s with %v", s.Event, s.Match), 0, func(e event) bool {
			return e.name == s.Event && matches(e.data, s.Match)
		})
		emit("expect_ok", map[string]any{"expected": s.Event, "data": ev.data})
	case "logout":
		cb := newCallback("Logout")
		sdk.Logout(cb, r.opID("logout"))
		if ev := cb.wait(time.Now().Add(r.deadline)); ev.name != "success" {
			fail("Logout: %d %s", ev.code, ev.text)
		}
		emit("logged_out", nil)
	default:
		fail("unknown step op %q", s.Op)
	}
}

func loadConfig() config {
	path := flag.String("config", "", "JSON config file (default: $IMLOG_SDKGO_CONFIG)")
	flag.Parse()
	raw := []byte(os.Getenv("IMLOG_SDKGO_CONFIG"))
	if *path != "" {
		var err error
		if raw, err = os.ReadFile(*path); err != nil {
			fail("config: %v", err)
		}
	}
	var cfg config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		fail("config: %v", err)
	}
	if cfg.APIAddr == "" || cfg.WsAddr == "" || cfg.UserID == "" || cfg.Token == "" || cfg.DataDir == "" {
		fail("config needs apiAddr, wsAddr, userID, token and dataDir")
	}
	if cfg.PlatformID == 0 {
		cfg.PlatformID = 2 // Android
	}
	if cfg.LogLevel == 0 {
		cfg.LogLevel = 5
	}
	if cfg.DeadlineMs == 0 {
		cfg.DeadlineMs = 20000
	}
	return cfg
}

func main() {
	// The events own fd 1; the SDK prints with fmt.Println, which is sent to stderr instead.
	out = os.Stdout
	os.Stdout = os.Stderr
	cfg := loadConfig()
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "log"), 0o755); err != nil {
		fail("dataDir: %v", err)
	}
	sdkCfg, _ := json.Marshal(map[string]any{
		"platformID":          cfg.PlatformID,
		"apiAddr":             cfg.APIAddr,
		"wsAddr":              cfg.WsAddr,
		"dataDir":             cfg.DataDir,
		"logLevel":            cfg.LogLevel,
		"isLogStandardOutput": false,
		"logFilePath":         filepath.Join(cfg.DataDir, "log"),
		"systemType":          "linux",
	})
	emit("start", map[string]any{"scenario": cfg.Scenario, "userID": cfg.UserID,
		"sdkVersion": sdk.GetSdkVersion()})
	if !sdk.InitSDK(connListener{}, "sdkgo-init", string(sdkCfg)) {
		fail("InitSDK refused the config %s", sdkCfg)
	}
	sdk.SetConversationListener(convListener{})
	sdk.SetAdvancedMsgListener(msgListener{})
	sdk.SetGroupListener(groupListener{})

	r := &runner{cfg: cfg, deadline: time.Duration(cfg.DeadlineMs) * time.Millisecond,
		stdin: bufio.NewReader(os.Stdin)}
	r.login()
	for i, s := range cfg.Steps {
		emit("step", map[string]any{"index": i, "op": s.Op})
		r.run(s)
	}
	emit("result", map[string]any{"ok": true, "scenario": cfg.Scenario})
	os.Exit(0)
}
