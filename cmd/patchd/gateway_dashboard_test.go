package main

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// wsColumnProblem is JavaScript that says what is wrong with the list's
// Workspace column, or "" when its cells fit: every .ws cell is within
// its row and not cut (its text fits its box), and the cells, and the
// ids after them, start at one x in every row (a column, aligned).
const wsColumnProblem = `(() => {
	const rows = [...document.querySelectorAll("#list button[data-id]")];
	if (!rows.length) return "no rows";
	if (!document.getElementById("list").classList.contains("with-ws")) return "no with-ws class";
	const xs = new Set(), ids = new Set();
	for (const b of rows) {
		const ws = b.querySelector(".ws"), id = b.querySelector(".id");
		if (!ws || !id) return b.dataset.id + ": no .ws or .id";
		const r = ws.getBoundingClientRect(), rb = b.getBoundingClientRect();
		if (r.width === 0) return b.dataset.id + ": .ws has no width";
		if (r.left < rb.left || r.right > rb.right) return b.dataset.id + ": .ws outside its row";
		if (ws.scrollWidth > ws.clientWidth + 1) return b.dataset.id + ": .ws cut";
		xs.add(Math.round(r.left)); ids.add(Math.round(id.getBoundingClientRect().left * 10) / 10);
	}
	if (xs.size !== 1) return "workspace cells at x " + [...xs].join(", ");
	if (ids.size !== 1) return "ids at x " + [...ids].join(", ");
	return "";
})()`

// wsColumn waits until the Workspace column has no problem, saying the
// last one if it does not come.
func wsColumn(p *page, what string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](wsColumnProblem+` === ""`, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		p.shot("failed-" + what)
		problem, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](wsColumnProblem))
		p.t.Fatalf("%s: %s", what, problem)
	}
}

// TestGatewayDashboardBrowser drives the dashboard of a real `patchd
// gateway --embedded-nats --workspaces a,b` (no runner: its patches stay
// queued) in a real headless Chromium: logged in with the token, the list
// shows a patch of workspace a and, live, one of b queued after the
// login, the header counting them queued, each with its workspace
// in the Workspace column, the column aligned and not cut, at a desktop's
// and a phone's width; a patch's page shows its Workspace row. Each step's
// page is a screenshot.
func TestGatewayDashboardBrowser(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	gw, base, _, _, out := startGateway(t, "a,b")
	token := gw.token()
	post := func(ws, block string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/ws/"+ws+"/webhook", strings.NewReader(block))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /ws/%s/webhook = %d\n%s", ws, resp.StatusCode, out)
		}
	}
	dir := *screenshotDir
	if dir == "" {
		dir = t.ArtifactDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)

	post("a", `{"id":"a-1","role":"ci_patch","target_file":"src/app.go","description":"fix the handler","patch":{"search":"x","replace":"y"}}`)

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.WindowSize(1280, 900))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	p := &page{t: t, ctx: bctx, dir: dir}
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("open the gateway's dashboard: %v", err)
	}
	p.do("the login", chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SetValue(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#login-form button")))
	p.until("the dashboard, live", `!document.getElementById("app").hidden && document.getElementById("live").textContent === "live"`)
	p.until("a-1 in the list, workspace a", `document.querySelector('#list button[data-id="a-1"] .ws')?.textContent === "a"`)
	p.until("a-1 counted queued", `document.getElementById("h-queue").textContent === "1 queued · 0 applying"`)
	// b-1, queued now, arrives on the open page by the gateway's event.
	post("b", `{"id":"b-1","role":"ci_patch","target_file":"docs/README.md","description":"reword the intro","patch":{"search":"x","replace":"y"}}`)

	posted := time.Now()
	p.until("b-1 in the list, workspace b", `document.querySelector('#list button[data-id="b-1"] .ws')?.textContent === "b"`)
	if d := time.Since(posted); d > 5*time.Second {
		t.Errorf("b-1 showed %v after it was queued: by the dashboard's 10 s refresh, not live", d)
	}
	p.until("both queued", `!!document.querySelector('#list button[data-id="a-1"] .s-queued') && !!document.querySelector('#list button[data-id="b-1"] .s-queued')`)
	p.until("both counted queued", `document.getElementById("h-queue").textContent === "2 queued · 0 applying"`)
	wsColumn(p, "the Workspace column at 1280 px")
	p.shot("gateway-list")

	p.do("open a-1", chromedp.Click(chromedp.CSS(`#list button[data-id="a-1"]`)))
	p.until("a-1's Workspace row", `(() => {
		const dt = [...document.querySelectorAll("#d-meta dt")].find((d) => d.textContent === "Workspace");
		return document.getElementById("detail-h").textContent === "Patch a-1" && !!dt && dt.nextElementSibling.textContent === "a";
	})()`)
	p.shot("gateway-patch")

	p.do("a phone's screen", chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2)))
	p.until("the page within 360 px", `document.documentElement.scrollWidth <= 360`)
	wsColumn(p, "the Workspace column at 360 px")
	p.shot("gateway-phone")
}
