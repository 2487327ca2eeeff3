# ruff: noqa: F821
"""The step-parallel engine: exact event times, every neuron's input for a step known when the step starts.

Appended after ``engine_template.py`` and ``fast_template.py``. It runs networks of linear populations
with additive, current-like synapses (see ``engine/steppath.py``) in which every loop between spiking
populations has a connection whose delays are all >= dt: a spike sent in a step then reaches no neuron
of its own loop before that step ends (NEST's precise-spike-time scheme, Morrison et al. 2007). Each
step takes the populations in an order where connections shorter than dt point forwards, and for each:

* its arrivals in the step are known: the inputs and spikes whose time plus the connection's delay lies
  in the step (a connection without delay has delay 0). Through a connection with one delay, sources are
  read from a window of recent steps. Through one with a delay per synapse, each source is taken once,
  in the step it is sent: its whole weight row is deposited, in order, into a ring of the target's coming
  steps (each arrival's share of its step's end state and of the walks' bound, and the arrival itself in
  its step's list, in entries of a pool taken in turn, sized for what the sources of a window can send), so
  every row is read as a sequence and nothing is sorted or dropped (an arrival after the trial never
  happens). The row's arrival steps, exponentials and shares come first, in loops that vectorise;
* the state is kept in modal coordinates y = V^-1 x (A = V diag(mu) V^-1), in which the free flow is
  diagonal and an arrival of weight w at t_a adds ``w exp(mu (t1 - t_a)) V^-1 beta`` to the end-of-step
  modes: d multiply-adds per target, along a weight row;
* a neuron is walked through its own arrivals only where a bound says that its threshold function may
  have reached 0 during the step (the free flow's largest value plus each arrival's largest positive
  share); the walk locates each crossing by root finding, resets, goes on, and its end state replaces
  the superposed one. Nothing restarts after a spike: no neuron of the population feels it in the step.

The backward pass mirrors it, step by step and population by population in reverse order, with the
adjoint in modal coordinates eta = V^T lambda kept as its end-of-step equivalent: an arrival's weight
gradient is ``v exp(mu (t1 - t_a)) (V^-1 beta) . eta(t1)``, and its time shift (dL/d delay, and the term of
the spike that sent it) is ``-w`` times the same sum weighted by mu. A neuron that spiked in the step has
one equivalent per stretch between its spikes.

The log holds the spikes only ([population, neuron, kind, -1, -1], the state before the spike in x
coordinates), population by population within a step and in time order per neuron; arrivals are found
again from the inputs and the spikes. Time convention: step n covers (n dt, (n + 1) dt] (step 0 includes
t = 0); an arrival at (n + 1) dt is applied in step n, before the readout samples the state there.
"""

# columns of the step engine's connection table CS: where the connection's delays start in DS and ER; 1 for
# one delay per synapse; how many past steps can still send arrivals; the first step after its sender's
# that an arrival can reach (1 where every delay is at least dt, else 0)
CS_OFF, CS_PER, CS_WINDOW, CS_FIRST = range(4)
STACK = 64  # deepest subdivision of a piece while looking for its first crossing


@leaf
def mode_at(mu, bm, y, s):
    """A mode's value after a time s without events: dy/dt = mu y + bm."""
    if mu == 0.0:
        return y + bm * s
    return y + (mu * y + bm) * (math.expm1(mu * s) / mu)


@flat_jit
def threshold_at(g, d, y, s, SMU, SBM, SCK, offset):
    """(f, df/ds) at time s into a piece that starts from modes y: f = offset + sum_k ck_k y_k(s)."""
    f = offset
    rate = 0.0
    for k in range(d):
        yk = mode_at(SMU[g, k], SBM[g, k], y[k], s)
        f += SCK[g, k] * yk
        rate += SCK[g, k] * (SMU[g, k] * yk + SBM[g, k])
    return f, rate


@flat_jit
def threshold_bound(g, d, y, a, b, SMU, SBM, SCK, offset):
    """An upper bound of f over [a, b]: between events each mode moves monotonically, so its share of f is
    largest at one end."""
    u = offset
    for k in range(d):
        ua = SCK[g, k] * mode_at(SMU[g, k], SBM[g, k], y[k], a)
        ub = SCK[g, k] * mode_at(SMU[g, k], SBM[g, k], y[k], b)
        u += larger(ua, ub)
    return u


@leaf
def turning_point(g, d, y, s_len, SMU, SBM, SCK):
    """Where f has its maximum inside (0, s_len) when it has up to two modes, else -1: f' = sum_k r_k
    exp(mu_k s) with r_k = ck_k (mu_k y_k + bm_k) changes sign at most once, from + to - at a maximum."""
    r0 = 0.0
    r1 = 0.0
    mu0 = SMU[g, 0]
    mu1 = SMU[g, 1] if d == 2 else 0.0
    r0 = SCK[g, 0] * (mu0 * y[0] + SBM[g, 0])
    if d == 2:
        r1 = SCK[g, 1] * (SMU[g, 1] * y[1] + SBM[g, 1])
    if r0 + r1 <= 0.0 or mu0 == mu1 or r0 * r1 >= 0.0:
        return -1.0  # f falls at the start (then it has no maximum inside), or f' keeps its sign
    s = math.log(-r1 / r0) / (mu0 - mu1)  # r0 exp(mu0 s) + r1 exp(mu1 s) = 0
    if s <= 0.0 or s >= s_len:
        return -1.0
    return s


@leaf
def no_turning_point(g, d, y, y_end, SMU, SBM, SCK):
    """True where f (up to two modes) has no maximum inside a piece from modes y to y_end: its slope,
    sum_k ck_k (mu_k y_k + bm_k), does not go from + at the start to - at the end. No exponentials."""
    if d > 2:
        return False
    ra = 0.0
    rb = 0.0
    for k in range(d):
        ra += SCK[g, k] * (SMU[g, k] * y[k] + SBM[g, k])
        rb += SCK[g, k] * (SMU[g, k] * y_end[k] + SBM[g, k])
    return ra <= 0.0 or rb >= 0.0


@flat_jit
def threshold_terms(g, d, y, s, SMU, SBM, SCK, offset, ys):
    """f and its first three derivatives at time s into a piece that starts from modes y (the modes at s
    into ys): the derivatives of a sum of exponentials come from f's exponentials (y_k' = mu_k y_k + bm_k,
    y_k'' = mu_k y_k')."""
    f = offset
    f1 = 0.0
    f2 = 0.0
    f3 = 0.0
    for k in range(d):
        mu = SMU[g, k]
        yk = mode_at(mu, SBM[g, k], y[k], s)
        ys[k] = yk
        ck = SCK[g, k]
        r = ck * (mu * yk + SBM[g, k])
        f += ck * yk
        f1 += r
        f2 += mu * r
        f3 += mu * mu * r
    return f, f1, f2, f3


@leaf
def hermite_guess(lo, hi, f_lo, r_lo, f_hi, r_hi):
    """A point near the root in [lo, hi] (f_lo < 0 <= f_hi), without an exponential: three Newton steps,
    from the chord's root, on the cubic that matches f and f' at both ends (within O((hi - lo)^4) of f),
    kept in the interval and free of branches. Only a first guess: bracketed_root keeps the bracket."""
    h = hi - lo
    a1 = h * r_lo
    a2 = 3.0 * (f_hi - f_lo) - 2.0 * a1 - h * r_hi
    a3 = 2.0 * (f_lo - f_hi) + a1 + h * r_hi
    u = f_lo / (f_lo - f_hi)
    for _ in range(3):
        p = f_lo + u * (a1 + u * (a2 + u * a3))
        dp = a1 + u * (2.0 * a2 + 3.0 * u * a3)
        u = smaller(larger(u - p / dp, 0.0), 1.0) if dp > 0.0 else u
    return lo + u * h


@flat_jit
def bracketed_root(g, d, y, lo, hi, f_lo, r_lo, f_hi, r_hi, SMU, SBM, SCK, offset, tol, y_root):
    """The root of f in [lo, hi], f(lo) = f_lo < 0 <= f(hi) = f_hi (slopes r_lo, r_hi), to tol: from
    hermite_guess, Halley steps (cubic convergence; f'' comes with f's exponentials) kept inside the
    bracket, else bisection. It stops once a step is below tol, or once the error the step leaves is
    estimated below a quarter of tol (after a Halley step from an error e, about
    (f2^2 / (4 f1^2) + |f3 / (6 f1)|) e^3; after a Newton step, |f2 / (2 f1)| e^2, with fk the k-th
    derivative): most crossings then take one set of exponentials. The modes at the root go into y_root:
    after a last step short enough for three terms of expm1's series (|mu step| <= 1e-4: the fourth is
    below 1e-18 of the step's change), carried from the last point's modes without an exponential."""
    s = hermite_guess(lo, hi, f_lo, r_lo, f_hi, r_hi)
    for _ in range(100):
        f, f1, f2, f3 = threshold_terms(g, d, y, s, SMU, SBM, SCK, offset, y_root)
        if f == 0.0:
            return s
        if f > 0.0:
            hi = s
        else:
            lo = s
        new = 0.5 * (lo + hi)
        err = math.inf  # the estimated error after the step
        if f1 > 0.0:
            inv = 1.0 / f1
            step = -f * inv
            c2 = 0.5 * f2 * inv
            den = 1.0 + step * c2
            if den > 0.5:  # Halley's correction of the Newton step, where it is a small one
                step = step / den
                err = (c2 * c2 + abs(f3 * inv) / 6.0) * abs(step * step * step)
            else:
                err = abs(c2) * step * step
            if lo < s + step < hi:
                new = s + step
            else:
                err = math.inf
        if abs(new - s) <= tol or hi - lo <= tol or err <= 0.25 * tol:
            root = smaller(larger(new, lo), hi)
            u = root - s
            short = True
            for k in range(d):
                short = short and abs(SMU[g, k] * u) <= 1e-4
            for k in range(d):
                mu = SMU[g, k]
                if short:  # expm1(mu u) / mu = u (1 + x / 2 + x^2 / 6), x = mu u
                    x = mu * u
                    y_root[k] += (mu * y_root[k] + SBM[g, k]) * (u * (1.0 + x * (0.5 + x / 6.0)))
                else:
                    y_root[k] = mode_at(mu, SBM[g, k], y[k], root)
            return root
        s = new
    for k in range(d):
        y_root[k] = mode_at(SMU[g, k], SBM[g, k], y[k], s)
    return s


@flat_jit
def first_crossing(g, d, y, s_len, SMU, SBM, SCK, offset, tol, stack, y_end):
    """The first s in [0, s_len] where f reaches 0 (f(0) < 0), with the modes there in y_end; or -1 if it
    stays below (then y_end holds the modes at s_len, from the same exponentials as the test).

    Most pieces end below 0 with a bound below 0 too: one set of exponentials decides them. With up to two
    modes f has at most one turning point: a crossing needs f(s_len) >= 0 or f >= 0 at its maximum inside,
    and the bracketed root is then the first. With more, intervals are cleared left to right: one whose
    bound is below 0 holds no crossing; the others are halved until their end reaches 0 (then the root is
    bracketed) or they are shorter than the tolerance (a graze that does not reach 0)."""
    fa = offset  # f and f' at the start: no exponentials
    ra = 0.0
    fb = offset
    ub = offset
    rb = 0.0
    for k in range(d):
        fa += SCK[g, k] * y[k]
        ra += SCK[g, k] * (SMU[g, k] * y[k] + SBM[g, k])
        yk = mode_at(SMU[g, k], SBM[g, k], y[k], s_len)
        y_end[k] = yk
        ck = SCK[g, k]
        fb += ck * yk
        ub += larger(ck * y[k], ck * yk)
        rb += ck * (SMU[g, k] * yk + SBM[g, k])
    if fb < 0.0 and ub < 0.0:
        return -1.0
    if fb >= 0.0:
        return bracketed_root(g, d, y, 0.0, s_len, fa, ra, fb, rb, SMU, SBM, SCK, offset, tol, y_end)
    if d <= 2:
        s = turning_point(g, d, y, s_len, SMU, SBM, SCK)
        if s < 0.0:
            return -1.0
        f, rate = threshold_at(g, d, y, s, SMU, SBM, SCK, offset)
        if f < 0.0:
            return -1.0
        return bracketed_root(g, d, y, 0.0, s, fa, ra, f, rate, SMU, SBM, SCK, offset, tol, y_end)
    a = 0.0
    b = s_len
    depth = 0
    while True:
        if fb >= 0.0:
            return bracketed_root(g, d, y, a, b, fa, ra, fb, rb, SMU, SBM, SCK, offset, tol, y_end)
        if b - a > tol and depth < STACK and threshold_bound(g, d, y, a, b, SMU, SBM, SCK, offset) >= 0.0:
            stack[depth] = b
            depth += 1
            b = 0.5 * (a + b)
        elif depth == 0:
            return -1.0  # y_end still holds the piece's end
        else:
            a = b  # cleared up to b: f and f' there start the next interval
            fa = fb
            ra = rb
            depth -= 1
            b = stack[depth]
        fb, rb = threshold_at(g, d, y, b, SMU, SBM, SCK, offset)


@leaf
def modes_to_state(g, d, y, SV, x):
    """x = V y."""
    for i in range(d):
        acc = 0.0
        for k in range(d):
            acc += SV[g, i, k] * y[k]
        x[i] = acc


@leaf
def state_to_modes(g, d, x, SVI, y):
    """y = V^-1 x."""
    for k in range(d):
        acc = 0.0
        for i in range(d):
            acc += SVI[g, k, i] * x[i]
        y[k] = acc


@jit
def input_sources(GI, in_time, in_unit, in_group, n_steps, dt):
    """What both passes read the inputs through: each step's first input (input_steps), the inputs as rows
    [group, unit] (the spike log's first columns, so that both are sources of one type), and the largest
    population's size."""
    in_first = np.empty(n_steps + 1, np.int64)
    input_steps(in_time, n_steps, dt, in_first)
    src_in = np.empty((in_time.shape[0], 2), np.int64)
    for s in range(in_time.shape[0]):
        src_in[s, 0] = in_group[s]
        src_in[s, 1] = in_unit[s]
    biggest = 1
    for g in range(GI.shape[0]):
        biggest = max(biggest, GI[g, SIZE])
    return in_first, src_in, biggest


@flat_jit
def input_steps(in_time, n_steps, dt, first):
    """first[n]: the first input of step n (an input at t belongs to the first step n with t <= (n + 1) dt)."""
    ip = 0
    n_in = in_time.shape[0]
    for n in range(n_steps):
        first[n] = ip
        while ip < n_in and in_time[ip] <= (n + 1) * dt:
            ip += 1
    first[n_steps] = ip


@leaf
def arrival_share(c, post, d, s, v, SMU, SPB, SPQ, col):
    """col[:d] = v exp(mu (s)) V^-1 beta_c, the modes one unit of weight adds s before the step's end;
    col[d], col[d+1] = (hu, hs): the bound's share per unit weight is hu w + hs |w| (see deliver_row)."""
    k_hi = 0.0
    k_lo = 0.0
    for k in range(d):
        e = math.exp(SMU[post, k] * s)
        col[k] = v * e * SPB[c, k]
        q = SPQ[c, k]
        k_hi += larger(q, q * e)  # the arrival's threshold share K(u) = sum_k q_k exp(mu_k u), u in [0, s], is at
        k_lo += smaller(q, q * e)  # most k_hi and at least k_lo; before it arrives it is 0
    k_hi = larger(k_hi, 0.0) * v
    k_lo = smaller(k_lo, 0.0) * v
    if v < 0.0:
        k_hi, k_lo = k_lo, k_hi
    col[d] = 0.5 * (k_hi + k_lo)
    col[d + 1] = 0.5 * (k_hi - k_lo)


@leaf
def deliver_row(GI, CI, W, c, post, j, col, Zend, RP, spiking):
    """Add a row arrival (unit j of connection c, shares col from arrival_share) to every target's end-of-step
    modes (state [mode, neuron]) and, for spiking targets, to the bound RP: w hu + |w| hs is the largest
    value (at or above 0) the arrival's share of the threshold function takes during the step."""
    d = GI[post, DIM]
    un = np.uint64(CI[c, NPOST])
    uw = np.uint64(CI[c, WOFF] + j * CI[c, NPOST])
    uz = np.uint64(GI[post, ZOFF])
    if d == 2 and spiking:  # the common case (a LIF neuron and its synapse) in one pass: each weight read once
        c0 = col[0]
        c1 = col[1]
        hu = col[2]
        hs = col[3]
        for m in range(un):
            w = W[uw + m]
            Zend[uz + m] += c0 * w
            Zend[uz + un + m] += c1 * w
            RP[uz + m] += hu * w + hs * abs(w)
        return
    for k in range(d):
        ck = col[k]
        base = uz + np.uint64(k) * un
        for m in range(un):
            Zend[base + m] += ck * W[uw + m]
    if spiking:
        hu = col[d]
        hs = col[d + 1]
        ur = np.uint64(GI[post, ZOFF])
        for m in range(un):
            w = W[uw + m]
            RP[ur + m] += hu * w + hs * abs(w)


@leaf
def row_arrival(src_t, src_i, s, pre, delay, n, t0, t1):
    """The arrival time of source entry s through a connection from group pre with one delay, if it falls in
    step n, (t0, t1] (step 0 includes t = 0); -1 otherwise. Both passes select a step's row arrivals by it."""
    if src_i[s, 0] != pre:
        return -1.0
    ta = np.float64(src_t[s]) + delay
    if ta > t1 or (n > 0 and ta <= t0):
        return -1.0
    return ta


@leaf
def deliver_arrivals(GI, CI, CS, W, DS, c, n, t0, t1, lo, hi, src_t, src_i, src_v, ARR, Zend, RP, EV, n_ev, col):
    """Deliver the row arrivals (one delay for connection c) in step n, (t0, t1], from source entries
    lo..hi-1: the inputs or the spike log (src_t times, src_i rows [group, unit], src_v values or none: 1),
    listed in ev_* ([connection, unit], value) for the walks. Returns n_ev, or -1 when the list is full.
    Inlined into its caller (which is why ARR = (SMU, SPB, SPQ) and EV come as tuples: a call with more than
    30 arguments cannot be inlined)."""
    SMU, SPB, SPQ = ARR
    ev_t, ev_i, ev_v = EV
    pre = CI[c, PRE]
    post = CI[c, POST]
    d = GI[post, DIM]
    spiking = GI[post, SPIKING] == 1
    delay = DS[CS[c, CS_OFF]]
    for s in range(lo, hi):
        ta = row_arrival(src_t, src_i, s, pre, delay, n, t0, t1)
        if ta < 0.0:
            continue
        if n_ev >= ev_t.shape[0]:
            return -1
        v = np.float64(src_v[s]) if src_v.shape[0] > 0 else 1.0
        j = src_i[s, 1]
        arrival_share(c, post, d, t1 - ta, v, SMU, SPB, SPQ, col)
        deliver_row(GI, CI, W, c, post, j, col, Zend, RP, spiking)
        ev_t[n_ev] = ta
        ev_i[n_ev, 0] = c
        ev_i[n_ev, 1] = j
        ev_v[n_ev] = v
        n_ev += 1
    return n_ev


@leaf
def step_of(t, dt, n_steps):
    """The step that time t falls in: the first n with t <= (n + 1) dt (t = 0 in step 0), by the comparisons
    the steps make; n_steps for a time after the trial's last step."""
    if not t <= n_steps * dt:
        return n_steps
    n = np.int64(math.ceil(t * (1.0 / dt))) - 1  # the reciprocal is hoisted out of loops; the tests below fix rounding
    if n < 0:
        n = 0
    if t > (n + 1) * dt:
        n += 1
    elif n > 0 and t <= n * dt:
        n -= 1
    return n


@leaf
def arrival_step(ta, floor, base, sb, R, dt, n_steps):
    """(step, time, ring slot, steps after the sender's step base, early) of an arrival at ta from a source
    sent in step base (ring slot sb of R): an arrival before step ``floor`` (a spike whose logged time was
    rounded down to its step's start: float32 logs) comes at the start of that step, the first whose ring
    slot is still ahead; its factored exponential does not hold then (early). Step n_steps: never arrives."""
    nm = step_of(ta, dt, n_steps)
    early = nm < floor
    if early:
        nm = floor
        ta = nm * dt
    i = nm - base
    slot = sb + i
    if slot >= R:
        slot -= R
    return nm, ta, slot, i, early


@leaf
def ring_block(PQ, ng):
    """The first of ng entries in a row of the lists' pool for a source's arrivals, taken now, or -1 when
    the pool has not that much room. The pool is a ring of entries taken in turn (CUR[0] taken so far, the
    next at CUR[1]; where fewer than ng are left before the pool's end, the block starts at 0 and those
    skipped count as taken): an entry is read in its arrival's step only, at most R - 1 steps after the step
    it was taken in, so the entries taken in the last R steps (from CUR[2] on, set as each step starts) are
    all that is in use. A block's entries whose arrival never comes stay out of every list."""
    size = PQ[0].shape[0]
    CUR = PQ[6]
    e0 = CUR[1]
    skip = size - e0 if e0 + ng > size else 0
    if CUR[0] - CUR[2] + skip + ng > size:
        return -1
    CUR[0] += skip + ng
    if skip > 0:
        e0 = 0
    CUR[1] = 0 if e0 + ng == size else e0 + ng
    return e0


@leaf
def ring_link(PQ, e, at):
    """Put pool entry e at the head of target at's list of its step (HEADS[at], threaded through pq_next,
    latest first)."""
    pq_next = PQ[3]
    HEADS = PQ[4]
    pq_next[np.uint64(e)] = HEADS[at]
    HEADS[at] = e


@leaf
def ring_step(PQ, n, R):
    """Step n starts: entries taken R - 1 or more steps ago are free (ring_block)."""
    STEP_TOP = PQ[5]
    CUR = PQ[6]
    CUR[2] = STEP_TOP[(n + 1) % R] if n + 1 >= R else 0
    STEP_TOP[n % R] = CUR[0]


@leaf
def ring_release(PQ, at, ng):
    """The step is over: empty the lists of its targets at .. at + ng - 1 (their entries are free once
    R - 1 more steps have passed: ring_block)."""
    HEADS = PQ[4]
    uat = np.uint64(at)
    for m in range(np.uint64(ng)):
        HEADS[uat + m] = -1


@leaf
def whole_steps(d, dt):
    """The whole steps K = floor(d / dt) of a delay d, as a float (a delay too long for any int): both
    the kernels and delay_tables (which builds exp(-mu (d - K dt)) from it) compute it this way."""
    return np.floor(d * (1.0 / dt))


@flat_jit
def single_arrivals_2(DS, ER, row, ts, base, floor, dt, n_steps, g0, g1, ng, ROWS):
    """The arrivals of a source (time ts, sent in step base) along its row of single-synapse delays (DS from
    ``row``) into a population with two modes, in a loop that vectorises (both passes read it first): per
    target m, its step's distance i from the sender's (AI: K or K + 1, K = whole_steps(d), by step_of's
    comparisons), its time (AT) and, per mode, exp(mu (t1(n) - t_a)) /
    exp(mu (t1(base) - ts)) = exp(mu dt)^(i - K) exp(-mu (d - K dt)) (AK0, AK1; the second factor is the
    synapse's ER, the first 1 or g = exp(mu dt): i - K is 0 or 1). AF flags what this cannot give:
    arrivals after the trial, before step ``floor`` (arrival_step), or with i - K other than 0 and 1 (a
    time on a step's edge): the row loops take those the exact way. Not inlined: inlined into the row loops,
    the loop does not vectorise."""
    AI, AK0, AK1, AT, AF = ROWS
    urow = np.uint64(row)
    uns = np.uint64(DS.shape[0])
    fb = np.float64(base)
    last = np.float64(n_steps - 1)
    first = np.float64(floor)
    for m in range(np.uint64(ng)):
        d = np.float64(DS[urow + m])
        ta = ts + d
        k = smaller(whole_steps(d, dt), 2.0**40)  # a longer delay never arrives (flagged below)
        c = fb + k  # ta's step is c or c + 1 (step_of's comparisons), else it sits on an edge: flagged
        at_c = ta <= (c + 1.0) * dt and (c == 0.0 or ta > c * dt)
        j1 = ta > (c + 1.0) * dt and ta <= (c + 2.0) * dt
        nm = c + 1.0 if j1 else c
        AI[m] = np.int64(k + 1.0 if j1 else k)
        AT[m] = ta
        AK0[m] = (g0 if j1 else 1.0) * np.float64(ER[urow + m])
        AK1[m] = (g1 if j1 else 1.0) * np.float64(ER[uns + urow + m])
        AF[m] = not (at_c or j1) or nm > last or nm < first


@leaf
def single_arrival(DS, syn, ts, floor, base, sb, R, dt, n_steps):
    """(step, time, ring slot, i - K) of the arrival through single synapse syn (arrival_step) for the row
    loops of any number of modes: i - K is 0 or 1 where its exponentials factor as in single_arrivals_2,
    -1 where they must be taken exactly (an early arrival, or one on a step's edge)."""
    d = np.float64(DS[syn])
    nm, ta, slot, i, early = arrival_step(ts + d, floor, base, sb, R, dt, n_steps)
    jk = np.float64(i) - whole_steps(d, dt)
    if early or not (jk == 0.0 or jk == 1.0):
        jk = -1.0
    return nm, ta, slot, jk


@flat_jit
def row_shares_2(W, wrow, v, e0, e1, b0, b1, q0, q1, ng, ROWS, AW, AB):
    """deposit_row's shares of a row's arrivals from their factors (single_arrivals_2), in a loop that
    vectorises: AK0, AK1 := the two modes' deposits, AB := the bound's, AW := the weights (v w). Flagged
    arrivals get numbers here too, unused (deposit_row takes them the exact way)."""
    AI, AK0, AK1, AT, AF = ROWS
    uw = np.uint64(wrow)
    for m in range(np.uint64(ng)):
        w = np.float64(W[uw + m]) * v
        k0 = e0 * AK0[m]
        k1 = e1 * AK1[m]
        AK0[m] = w * k0 * b0
        AK1[m] = w * k1 * b1
        k_hi = larger(larger(q0, q0 * k0) + larger(q1, q1 * k1), 0.0)
        k_lo = smaller(smaller(q0, q0 * k0) + smaller(q1, q1 * k1), 0.0)
        AB[m] = larger(k_hi * w, k_lo * w)
        AW[m] = w


@flat_jit
def deposit_shares_2(RZ, PQ, DS, row, c, ts, floor, base, sb, R, dt, n_steps, post, zo, ng, dm, ztot, spiking, mu0,
                     mu1, b0, b1, q0, q1, ROWS, RSH):
    """deposit_row's last loop for two modes: each arrival's shares (row_shares_2, or the exact way where
    flagged) into its step's ring slot, and the arrival into its target's list. Not inlined: on its own
    the loop keeps its arrays in registers."""
    AI, AK0, AK1, AT, AF = ROWS
    AW, AB = RSH
    urow = np.uint64(row)
    udm = np.uint64(dm)
    uzo = np.uint64(zo)
    uzt = np.uint64(ztot)
    e0 = ring_block(PQ, ng)  # the row's pool entries
    if e0 < 0:
        return False
    pq_t, pq_c, pq_w = PQ[0], PQ[1], PQ[2]
    ue0 = np.uint64(e0)
    for m in range(np.uint64(ng)):  # the arrivals' entries, along the row: a loop that vectorises
        pq_t[ue0 + m] = AT[m]
        pq_c[ue0 + m] = c
        pq_w[ue0 + m] = AW[m]
    for m in range(np.uint64(ng)):
        if AF[m]:  # the exact way (arrival_step)
            nm, ta, slot_, i_, early = arrival_step(ts + DS[urow + m], floor, base, sb, R, dt, n_steps)
            if nm >= n_steps:
                continue
            k0 = math.exp(mu0 * ((nm + 1) * dt - ta))
            k1 = math.exp(mu1 * ((nm + 1) * dt - ta))
            w = AW[m]
            z0 = w * k0 * b0
            z1 = w * k1 * b1
            k_hi = larger(larger(q0, q0 * k0) + larger(q1, q1 * k1), 0.0)
            k_lo = smaller(smaller(q0, q0 * k0) + smaller(q1, q1 * k1), 0.0)
            zb = larger(k_hi * w, k_lo * w)
            pq_t[ue0 + m] = ta  # an early arrival's time moves
        else:
            slot_ = sb + AI[m]
            if slot_ >= R:
                slot_ -= R
            z0 = AK0[m]
            z1 = AK1[m]
            zb = AB[m]
        slot = np.uint64(slot_)
        at = slot * uzt + uzo + m
        ua = at * (udm + np.uint64(1))
        RZ[ua] += z0
        RZ[ua + np.uint64(1)] += z1
        if spiking:
            RZ[ua + udm] += zb
        ring_link(PQ, ue0 + m, at)
    return True


@leaf
def deposit_row(GI, CI, CS, W, DS, ER, c, ts, j, v, floor, dt, n_steps, RING, PQ, e_src):
    """Deposit the arrivals of source (ts, unit j, value v) through connection c (one delay per synapse, read
    along the weight row) in its target's ring of pending steps, slot n % R for step n: each arrival's
    share of that step's end-of-step modes and of the walks' bound (RZ, side by side per target), and the
    arrival itself in its target's list of the step (for the walks). exp(mu (t1 - t_a)) factors as
    exp(mu (t1(n_s) - ts)) exp(mu dt)^(i - K) exp(-mu (d - K dt)) (single_arrivals_2): one exponential per
    source and mode. An arrival after the trial's last step never happens, and none comes before step
    ``floor`` (arrival_step). Returns False when the lists' pool is full."""
    RZ, SED, SMU, SPB, SPQ, R, ROWS, RSH = RING
    dm = SMU.shape[1]
    ztot = RZ.shape[0] // (R * (dm + 1))
    post = CI[c, POST]
    d = GI[post, DIM]
    ng = GI[post, SIZE]
    zo = GI[post, ZOFF]
    spiking = GI[post, SPIKING] == 1
    row = CS[c, CS_OFF] + j * ng
    wrow = CI[c, WOFF] + j * ng
    base = step_of(ts, dt, n_steps)
    sb = base % R
    for k in range(d):
        e_src[k] = math.exp(SMU[post, k] * ((base + 1) * dt - ts))
    if d == 2:  # two modes (a LIF neuron and its synapse): factors and shares first, in loops that vectorise
        single_arrivals_2(DS, ER, row, ts, base, floor, dt, n_steps, SED[post, 0], SED[post, 1], ng, ROWS)
        mu0 = SMU[post, 0]
        mu1 = SMU[post, 1]
        b0 = SPB[c, 0]
        b1 = SPB[c, 1]
        q0 = SPQ[c, 0]
        q1 = SPQ[c, 1]
        row_shares_2(W, wrow, v, e_src[0], e_src[1], b0, b1, q0, q1, ng, ROWS, RSH[0], RSH[1])
        return deposit_shares_2(RZ, PQ, DS, row, c, ts, floor, base, sb, R, dt, n_steps, post, zo, ng, dm, ztot,
                                spiking, mu0, mu1, b0, b1, q0, q1, ROWS, RSH)
    e0 = ring_block(PQ, ng)  # the row's pool entries
    if e0 < 0:
        return False
    pq_t, pq_c, pq_w = PQ[0], PQ[1], PQ[2]
    for m in range(ng):
        nm, ta, slot, jk = single_arrival(DS, row + m, ts, floor, base, sb, R, dt, n_steps)
        if nm >= n_steps:
            continue
        exact = jk < 0.0
        w = W[wrow + m] * v
        at = slot * ztot + zo + m
        k_hi = 0.0
        k_lo = 0.0
        for k in range(d):
            if exact:
                e = math.exp(SMU[post, k] * ((nm + 1) * dt - ta))
            else:
                e = e_src[k] * (1.0 if jk == 0.0 else SED[post, k]) * ER[k * DS.shape[0] + row + m]
            RZ[at * (dm + 1) + k] += w * e * SPB[c, k]
            q = SPQ[c, k]
            k_hi += larger(q, q * e)
            k_lo += smaller(q, q * e)
        if spiking:
            RZ[at * (dm + 1) + dm] += larger(larger(k_hi, 0.0) * w, smaller(k_lo, 0.0) * w)
        pq_t[e0 + m] = ta
        pq_c[e0 + m] = c
        pq_w[e0 + m] = w
        ring_link(PQ, e0 + m, at)
    return True


@flat_jit
def deposit_sources(GI, CI, CS, W, DS, ER, c, lo, hi, src_t, src_i, src_v, n, first_of_n, dt, n_steps, RING, PQ,
                    e_src):
    """deposit_row for the source entries lo..hi-1 of connection c's source group, taken in step n; False
    when the pool is full. Spikes (entries from first_of_n on were logged in step n, earlier ones in step
    n - 1) reach no step before their own, or the next one where every delay is at least dt (inputs: their
    own step, always). Not inlined: in a function of its own the row loop keeps its constants in
    registers."""
    pre = CI[c, PRE]
    from_log = src_v.shape[0] == 0
    for s in range(lo, hi):
        if src_i[s, 0] != pre:
            continue
        v = np.float64(src_v[s]) if src_v.shape[0] > 0 else 1.0
        floor = ((n if s >= first_of_n else n - 1) + CS[c, CS_FIRST]) if from_log else 0
        if not deposit_row(GI, CI, CS, W, DS, ER, c, np.float64(src_t[s]), src_i[s, 1], v, floor, dt, n_steps,
                           RING, PQ, e_src):
            return False
    return True


@leaf
def own_from_pool(PQ, at, cand, n_cand, cur, head, OWN):
    """Copy the lists of the candidates (targets at + cand[a]) out of the pool into OWN (time, connection,
    weight, next: one list per candidate from head[a], in the layout the walks read), all chains advanced
    one entry per round: a chain's entries lie scattered in the pool, and following one to its end would
    wait for each entry's cache miss in turn."""
    pq_t, pq_c, pq_w, pq_next, HEADS, STEP_TOP, CUR = PQ
    own_t, own_c, own_w, own_next = OWN[0], OWN[1], OWN[2], OWN[3]
    for a in range(n_cand):
        cur[a] = HEADS[at + cand[a]]
        head[a] = -1
    n_own = 0
    live = True
    while live:
        live = False
        for a in range(n_cand):
            r = cur[a]
            if r < 0:
                continue
            live = True
            own_t[n_own] = pq_t[r]
            own_c[n_own] = pq_c[r]
            own_w[n_own] = pq_w[r]
            own_next[n_own] = head[a]
            head[a] = n_own
            n_own += 1
            cur[a] = pq_next[r]


@leaf
def take_pending(GI, g, slot, Zend, RP, RZ, dm):
    """Add ring slot's deposits to g's end-of-step modes and bound, and clear them (RZ: per step and target,
    its dm modes' deposits, then its bound's)."""
    d = GI[g, DIM]
    ng = GI[g, SIZE]
    zo = GI[g, ZOFF]
    uw = np.uint64(dm + 1)
    at = np.uint64(slot * Zend.shape[0] + zo) * uw
    uzo = np.uint64(zo)
    ung = np.uint64(ng)
    for m in range(ung):
        for k in range(d):
            Zend[uzo + np.uint64(k) * ung + m] += RZ[at + m * uw + np.uint64(k)]
            RZ[at + m * uw + np.uint64(k)] = 0.0
    if GI[g, SPIKING] == 1:
        for m in range(ung):
            RP[uzo + m] += RZ[at + m * uw + np.uint64(dm)]
            RZ[at + m * uw + np.uint64(dm)] = 0.0


@leaf
def sort_by_time(times, order, n):
    """Sort times[:n] in place, ascending, and set order[:n] to where each came from (insertion sort, stable:
    the lists are short; the keys compared are read in place, not through order)."""
    for a in range(n):
        order[a] = a
    for a in range(1, n):
        t = times[a]
        b = a - 1
        while b >= 0 and times[b] > t:
            times[b + 1] = times[b]
            order[b + 1] = order[b]
            b -= 1
        times[b + 1] = t
        order[b + 1] = a


@leaf
def emit_spike(GI, PR, g, m, d, t, y, x, tmp, SV, SVI, log_t, log_i, sp_x, counts, RO, y_out, first, MF):
    """Log the spike of neuron m of g at t (modes y just before), reset it, and return the status."""
    modes_to_state(g, d, y, SV, x)
    # the step kernels log spikes only (their inputs are read again in the backward pass, their arrivals found
    # from the spikes): their log's rows are [group, unit], two columns of log_event's five
    e = log_event(log_t, log_i, counts, t, g, m, np.int64(KIND_CROSSING), np.int64(-1), np.int64(-1))
    if e < 0:
        return ERR_CAPACITY
    for i in range(d):
        sp_x[e, i] = x[i]
    if RO[2] == 2 and g == RO[0] and first[m] < 0:
        first[m] = e
        y_out[m] = t
    p = params_of(GI, PR, g, 0)
    MF[MF_RESET](g, x[:d], p, tmp)
    if MF[MF_THR](g, tmp[:d], p) >= 0.0:
        counts[2] = g
        counts[3] = m
        return ERR_RESET
    state_to_modes(g, d, tmp, SVI, y)
    return OK


@leaf
def clear_pieces_2(g, zo, ng, Z, cand, n_cand, n_ev, th0, W, PIECES, SMU, SBM, SCK, CLEAR, counts):
    """Walk every candidate of g (two modes, row arrivals only) through the table pieces that walk_candidates'
    test clears: f below 0 at both ends of the piece and, where the bound does not settle it, no maximum inside.
    All candidates at once, piece by piece, in a loop over candidates without branches (vector code where a
    step has eight candidates or more, unrolled scalar code below that); a candidate stops at the first
    piece it cannot clear. Leaves in CLEAR = (y0, y1, stop, work), per candidate, that
    piece (stop; n_ev + 1: every piece cleared) and the modes at its start, the arrival that opens it
    applied (after every piece: the step's end state). The arithmetic is walk_candidates', operation for
    operation, so the state is the same to the last bit; most pieces of most walks are cleared here."""
    PEX, PAF, PT, PWO, PJ = PIECES
    Y0, Y1, STOP, WV = CLEAR
    c0 = SCK[g, 0]
    c1 = SCK[g, 1]
    r0 = SMU[g, 0]
    r1 = SMU[g, 1]
    b0 = SBM[g, 0]
    b1 = SBM[g, 1]
    unc = np.uint64(n_cand)
    done = np.int64(n_ev + 1)  # the mark of a candidate that has not stopped
    uz0 = np.uint64(zo)
    uz1 = np.uint64(zo + ng)
    for i in range(unc):
        m = np.uint64(cand[i])
        Y0[i] = Z[uz0 + m]
        Y1[i] = Z[uz1 + m]
        STOP[i] = done
    going = n_cand
    cleared = 0
    for a in range(np.uint64(n_ev + 1)):
        e0 = PEX[a, 0]
        e1 = PEX[a, 1]
        p0 = PAF[a, 0]
        p1 = PAF[a, 1]
        j0 = 0.0
        j1 = 0.0
        if a < np.uint64(n_ev):  # the piece ends at a row arrival: its weights onto the candidates, gathered here
            j0 = PJ[a, 0]  # so that the loop below vectorises (LLVM does not vectorise a loop with a gather)
            j1 = PJ[a, 1]
            wo = np.uint64(PWO[a])
            for i in range(unc):
                WV[i] = W[wo + np.uint64(cand[i])]
        else:
            for i in range(unc):
                WV[i] = 0.0
        ia = np.int64(a)
        stopped = 0
        for i in range(unc):
            y0 = Y0[i]
            y1 = Y1[i]
            f0 = th0 + c0 * y0 + c1 * y1
            x0 = e0 * y0 + p0
            x1 = e1 * y1 + p1
            fe = th0 + c0 * x0 + c1 * x1
            ub = th0 + larger(c0 * y0, c0 * x0) + larger(c1 * y1, c1 * x1)
            ra = c0 * (r0 * y0 + b0) + c1 * (r1 * y1 + b1)
            rb = c0 * (r0 * x0 + b0) + c1 * (r1 * x1 + b1)
            ok = (f0 < 0.0) & (fe < 0.0) & ((ub < 0.0) | (ra <= 0.0) | (rb >= 0.0))
            going_i = STOP[i] == done
            clear = going_i & ok
            halt = going_i & (not ok)
            w = WV[i]
            Y0[i] = (x0 + w * j0) if clear else y0
            Y1[i] = (x1 + w * j1) if clear else y1
            STOP[i] = ia if halt else STOP[i]
            cleared += np.int64(clear)
            stopped += np.int64(halt)
        going -= stopped
        if going == 0:
            break
    counts[6] += cleared


@leaf
def walk_candidates(GI, CI, PR, W, g, t0, t1, tol, Z, Zend, ubuf, cand, n_cand, head, sy_next, n_ev, PIECES,
                    SYO, n_sy, WT, LOG, counts, RO, y_out, first, scratch, log_limit, CLEAR, MF):
    """Walk each candidate m = cand[a] of g through its arrivals of the step in time order (the n_ev row
    arrivals as piece_tables lists them, and its own single-synapse arrivals, threaded from head[a] through
    sy_next and sorted here), from its modes at t0: every crossing is located, logged and reset, and the exact end
    state goes into Zend. A piece between row arrivals (or the step's ends) that no own arrival or spike cuts
    takes its flow from the tables PEX, PAF that every walk of the step shares (PIECES, from piece_tables,
    with each row arrival's time, weight row and jump per unit weight in time order); exponentials are computed
    only for other pieces and where the bound leaves a crossing possible. After its first spike, where
    ubuf[m] (step_candidates' bound on the superposed trajectory over the step) plus the reset's share stays
    below 0, no second crossing can follow, and the end state is the superposed one plus the reset's jump
    carried to t1: the rest of the step is not walked. A spike that takes the log past log_limit (the step's
    spike budget) stops the run with ERR_BUDGET, naming the neuron. Inlined into its caller, the arrays
    grouped in tuples (SYO: the single arrivals and a list, WT: the tables, LOG: the spike log, scratch): a
    call passes every array on the stack, and one with more than 30 arguments cannot be inlined."""
    PEX, PAF, PT, PWO, PJ = PIECES
    sy_t, sy_c, sy_v, sy_own, sy_key = SYO
    SMU, SBM, SCK, STH, SPB, SV, SVI = WT
    log_t, log_i, sp_x = LOG
    y, x, tmp, dy, stack = scratch
    d = GI[g, DIM]
    ng = GI[g, SIZE]
    zo = GI[g, ZOFF]
    for a_cand in range(n_cand):
        m = cand[a_cand]
        bound = ubuf[m]
        n_own = 0
        if n_sy > 0:
            r = head[a_cand]
            while r >= 0:
                sy_own[n_own] = r
                sy_key[n_own] = sy_t[r]
                n_own += 1
                r = sy_next[r]
        for k in range(d):
            y[k] = Z[zo + k * ng + m]
        for a in range(1, n_own):  # insertion sort of the neuron's single-synapse arrivals by time (sy_key)
            q = sy_own[a]
            tq = sy_key[a]
            b = a - 1
            while b >= 0 and sy_key[b] > tq:
                sy_own[b + 1] = sy_own[b]
                sy_key[b + 1] = sy_key[b]
                b -= 1
            sy_own[b + 1] = q
            sy_key[b + 1] = tq
        t = t0
        a_row = 0
        a_own = 0
        on_table = True  # t is where table piece a_row starts
        th0 = STH[g]
        spikes = 0
        superposed = False
        if d == 2 and n_sy == 0:  # clear_pieces_2 has walked it to its first piece in doubt
            a_row = CLEAR[2][a_cand]
            y[0] = CLEAR[0][a_cand]
            y[1] = CLEAR[1][a_cand]
            if a_row > n_ev:  # every piece cleared: no crossing in the step, y is the exact end state
                Zend[zo + m] = y[0]
                Zend[zo + ng + m] = y[1]
                continue
            if a_row > 0:
                t = PT[a_row - 1]
        while True:
            # the next arrival: row or own, the earlier first (rows first at equal times); none: the step's end
            te = t1
            which = 0
            if a_row < n_ev:
                te = PT[a_row]
                which = 1
            if a_own < n_own and (which == 0 or sy_key[a_own] < te):
                te = sy_key[a_own]
                which = 2
            use_table = on_table and which != 2
            while True:  # crossings before te
                f0 = th0
                for k in range(d):
                    f0 += SCK[g, k] * y[k]
                sc = 0.0
                if f0 < 0.0 and use_table:
                    fe = th0
                    ub = th0
                    for k in range(d):
                        x[k] = PEX[a_row, k] * y[k] + PAF[a_row, k]
                        ck = SCK[g, k]
                        fe += ck * x[k]
                        ub += larger(ck * y[k], ck * x[k])
                    counts[6] += 1
                    if fe < 0.0 and (ub < 0.0 or no_turning_point(g, d, y, x, SMU, SBM, SCK)):
                        sc = -1.0
                    else:
                        counts[5] += 1
                        sc = first_crossing(g, d, y, te - t, SMU, SBM, SCK, th0, tol, stack, x)
                elif f0 < 0.0:
                    counts[5] += 1
                    counts[6] += 1
                    sc = first_crossing(g, d, y, te - t, SMU, SBM, SCK, th0, tol, stack, x)
                if sc < 0.0:
                    for k in range(d):  # first_crossing left the modes at te in x
                        y[k] = x[k]
                    break
                if f0 < 0.0:  # first_crossing left the modes at the crossing in x (else it is at t: sc = 0)
                    for k in range(d):
                        y[k] = x[k]
                t = t + sc
                use_table = False
                for k in range(d):
                    dy[k] = y[k]
                status = emit_spike(GI, PR, g, m, d, t, y, x, tmp, SV, SVI, log_t, log_i, sp_x, counts, RO, y_out,
                                    first, MF)
                if status != OK:
                    return status
                if counts[0] > log_limit:  # a runaway network: stop here rather than fill the log
                    counts[2] = g
                    counts[3] = m
                    return ERR_BUDGET
                if spikes == 0:  # the reset's jump y+ - y- decays mode by mode: its largest share is at one end
                    share = bound
                    for k in range(d):
                        jump_k = y[k] - dy[k]
                        at_end = jump_k * math.exp(SMU[g, k] * (t1 - t))
                        share += larger(SCK[g, k] * jump_k, SCK[g, k] * at_end)
                        dy[k] = at_end
                    if share < 0.0:
                        for k in range(d):
                            Zend[zo + k * ng + m] += dy[k]
                        superposed = True
                        break
                spikes += 1
            if superposed:
                break
            t = te
            on_table = which == 1
            if which == 0:
                break
            if which == 1:
                w = W[PWO[a_row] + m]
                for k in range(d):
                    y[k] += w * PJ[a_row, k]
                a_row += 1
            else:
                r = sy_own[a_own]
                c = sy_c[r]
                w = sy_v[r]  # the weight times the event's value
                a_own += 1
                for k in range(d):
                    y[k] += w * SPB[c, k]
        if not superposed:
            for k in range(d):
                Zend[zo + k * ng + m] = y[k]
    return OK


@leaf
def step_candidates(GI, g, dt, Z, Zend, RP, SMU, SBM, SCK, STH, SED, SAD, ubuf, fbuf, hbuf, cbuf, kbuf, cand, counts):
    """The neurons of g whose threshold function may have reached 0 in the step, into cand; returns how
    many. One bound per neuron, in loops over neurons that vectorise, with no exponential: the free flow's
    threshold function sampled at the step's start, middle and end (a mode's flow over half a step is the
    square root of SED's, its offset SAD / (1 + that)), plus h^2 / 8 times a bound of its curvature (the
    most a smooth function rises above the chord of a piece of length h = dt / 2), plus the arrivals'
    largest shares RP; or the superposed end state at or above 0. A neuron that passes is walked."""
    d = GI[g, DIM]
    ng = GI[g, SIZE]
    zo = GI[g, ZOFF]
    th0 = STH[g]
    ung = np.uint64(ng)  # unsigned indices: no wraparound tests, loops that vectorise
    for m in range(ung):
        ubuf[m] = th0  # f at the start
        hbuf[m] = th0  # in the middle
        cbuf[m] = th0  # at the end, free flow only
        fbuf[m] = th0  # at the end, with the step's arrivals
        kbuf[m] = 0.0  # the curvature term
    for k in range(d):
        ck = SCK[g, k]
        mu = SMU[g, k]
        bm = SBM[g, k]
        e = SED[g, k]
        a = SAD[g, k]
        eh = math.sqrt(e)
        ah = a / (1.0 + eh)
        # |f_k''(s)| = |ck mu (mu y + bm)| exp(mu s) <= |ck mu| max(1, e) |mu y + bm|; times h^2 / 8, h = dt / 2
        kc = abs(ck * mu) * larger(1.0, e) * dt * dt / 32.0
        base = np.uint64(zo + k * ng)
        for m in range(ung):
            z = np.float64(Z[base + m])
            ubuf[m] += ck * z
            hbuf[m] += ck * (eh * z + ah)
            cbuf[m] += ck * (e * z + a)
            fbuf[m] += ck * Zend[base + m]
            kbuf[m] += kc * abs(mu * z + bm)
    uzo = np.uint64(zo)
    for m in range(ung):  # walk_candidates' bound on the superposed trajectory
        ubuf[m] = larger(larger(ubuf[m], hbuf[m]), cbuf[m]) + kbuf[m] + RP[uzo + m]
    n_cand = 0
    for m in range(ung):  # the neurons the bound keeps, listed without a branch (cand has room for every one)
        cand[n_cand] = m
        n_cand += 0 if (ubuf[m] < 0.0) & (fbuf[m] < 0.0) else 1
    return n_cand


@leaf
def piece_tables(g, d, t0, t1, CI, ev_t, ev_i, ev_v, ev_order, n_ev, SMU, SBM, SPB, PIECES):
    """What the walks of the step share: the flow over each piece between the step's sorted row arrivals (and
    its ends), y_end = PEX[a] y + PAF[a] over piece a; and row arrival a's time PT[a], where its weight row
    starts (PWO[a]) and its jump per unit weight (PJ[a] = value V^-1 beta), in time order."""
    PEX, PAF, PT, PWO, PJ = PIECES
    for a in range(n_ev):
        r = ev_order[a]
        c = ev_i[r, 0]
        PT[a] = ev_t[a]  # sort_by_time sorted the times in place
        PWO[a] = CI[c, WOFF] + ev_i[r, 1] * CI[c, NPOST]
        for k in range(d):
            PJ[a, k] = ev_v[r] * SPB[c, k]
    t = t0
    for a in range(n_ev + 1):
        te = t1 if a == n_ev else PT[a]
        s = te - t
        for k in range(d):
            mu = SMU[g, k]
            if mu == 0.0:
                PEX[a, k] = 1.0
                PAF[a, k] = SBM[g, k] * s
            else:
                em1 = math.expm1(mu * s)
                PEX[a, k] = 1.0 + em1
                PAF[a, k] = SBM[g, k] * em1 / mu
        t = te


@leaf
def readout_sample(GI, RO, ws, Z, SV, n, y_out, first):
    """The readout's sample at the end of step n, from the modes: x_var = sum_k V[var, k] y_k."""
    g = RO[0]
    if RO[2] > 1:
        return
    d = GI[g, DIM]
    ng = GI[g, SIZE]
    zo = GI[g, ZOFF]
    for m in range(ng):
        v = 0.0
        for k in range(d):
            v += SV[g, RO[1], k] * Z[zo + k * ng + m]
        if RO[2] == 0:
            y_out[m] += ws[n] * v
        elif n == 0 or v > y_out[m]:
            y_out[m] = v
            first[m] = n


@jit
def arrival_room(GI, CI, CS, ICS, ICL, in_first, n_steps, budget, room):
    """(row arrivals, own arrivals, pool, R): the room of the list of one step's row arrivals into one
    population, ``room``, or less where less can come; the most single-synapse arrivals one neuron can have
    in one step (one per source of the windows); the single-synapse arrivals that the pool of deposit_row's
    lists can have in use at once (every target of the sources of a window: ring_block), and the ring's
    length R (steps an arrival can lie ahead of its deposit, and one more). A source sends arrivals into
    steps n .. n + window(c) - 1 of its own step n: deliver_arrivals reads the sources of a step's window,
    and every single-synapse arrival in flight comes from one. The inputs are counted (all input populations
    together); spikes are at most ``budget`` per step (more stop the run: ERR_BUDGET), and their share of
    the pool is capped by ``room``. A step that fills the list or the pool returns ERR_ROOM, and the caller
    runs the sample again with twice the room (and keeps it for the next samples)."""
    rows = 1
    singles = 1
    from_inputs = 0
    from_spikes = 0
    R = 1
    for g in range(GI.shape[0]):
        r = 0
        s = 0
        for ic in range(ICS[g], ICS[g + 1]):
            c = ICL[ic]
            window = CS[c, CS_WINDOW]
            if GI[CI[c, PRE], IS_INPUT] == 1:
                most = 0
                for n in range(n_steps):
                    most = max(most, in_first[n + 1] - in_first[max(n - window, 0)])
            else:
                most = (window + 1) * budget
            if CS[c, CS_PER] == 0:
                r += most
                continue
            s += most
            R = max(R, min(window, n_steps) + 1)
            if GI[CI[c, PRE], IS_INPUT] == 1:
                from_inputs += most * CI[c, NPOST]
            else:
                from_spikes += most * CI[c, NPOST]
        rows = max(rows, r)
        singles = max(singles, s)
    return min(rows, room), singles, from_inputs + min(from_spikes, room), R


@jit
def forward_step(GI, CI, CS, ORDER, ICS, ICL, PR, W, DS, ER, Z0, dt, n_steps, tol, budget, room, in_time, in_unit,
                 in_group, in_value, RO, ws, SMU, SBM, SCK, STH, SED, SAD, SPB, SPQ, SV, SVI, log_t, log_i, sp_x,
                 y_out, first, counts, sp_first, MF):
    """Simulate one sample on the step-parallel engine (module docstring); returns a status. sp_first[n]: the
    first spike of step n in the log. counts[4:7]: neurons walked, pieces that took exponentials
    (first_crossing), pieces walked."""
    dmax = sp_x.shape[1]
    ztot = Z0.shape[0]
    G = GI.shape[0]
    Z = np.empty(ztot, Z0.dtype)
    x = np.empty(dmax, np.float64)
    y = np.empty(dmax, np.float64)
    for g in range(G):  # the initial state, [neuron, variable], into modes, [mode, neuron]
        if GI[g, IS_INPUT] == 1:
            continue
        d = GI[g, DIM]
        ng = GI[g, SIZE]
        zo = GI[g, ZOFF]
        for m in range(ng):
            for i in range(d):
                x[i] = Z0[zo + m * d + i]
            state_to_modes(g, d, x, SVI, y)
            for k in range(d):
                Z[zo + k * ng + m] = y[k]
    in_first, src_in, biggest = input_sources(GI, in_time, in_unit, in_group, n_steps, dt)
    n_rows, n_singles, n_pool, R = arrival_room(GI, CI, CS, ICS, ICL, in_first, n_steps, budget, room)
    n_pq = n_pool + biggest  # room for one block skipped at the pool's end (ring_block)
    # the pending single-synapse arrivals: per target and step of the ring, its deposits (modes, then bound)
    # and its list (HEADS) of entries in a pool taken in turn (ring_block)
    PQ = (np.empty(n_pq, np.float64), np.empty(n_pq, np.int32), np.empty(n_pq, np.float64),
          np.empty(n_pq, np.int32), np.full(R * ztot, -1, np.int32), np.zeros(R, np.int64), np.zeros(3, np.int64))
    # ROWS: one source's row of single-synapse arrivals at a time (single_arrivals_2)
    ROWS = (np.empty(biggest, np.int64), np.empty(biggest, np.float64), np.empty(biggest, np.float64),
            np.empty(biggest, np.float64), np.empty(biggest, np.bool_))
    RSH = (np.empty(biggest, np.float64), np.empty(biggest, np.float64))  # row_shares_2's weights and bounds
    RING = (np.zeros(R * ztot * (dmax + 1), Z0.dtype), SED, SMU, SPB, SPQ, R, ROWS, RSH)
    # one step's arrivals into one population: row arrivals (ev_*, and the walks' pieces between them); one
    # candidate's own single-synapse arrivals (sy_own)
    work = (Z, np.empty(ztot, Z0.dtype), np.zeros(ztot + 1, Z0.dtype), in_first, src_in, np.empty(0, log_t.dtype),
            np.empty(n_rows, np.float64), np.empty((n_rows, 2), np.int64), np.empty(n_rows, np.float64),
            np.empty(n_rows, np.int64), np.empty(n_singles, np.int64), np.empty(biggest, np.int64),
            np.empty(biggest, np.int64),
            np.empty(biggest, np.float64), np.empty(biggest, np.float64), np.empty(biggest, np.float64),
            np.empty(biggest, np.float64), np.empty(biggest, np.float64), np.empty(dmax + 2, Z0.dtype),
            np.empty(dmax, np.float64), y, x, np.empty(dmax, np.float64), np.empty(STACK, np.float64),
            np.empty((n_rows + 1, dmax), np.float64), np.empty((n_rows + 1, dmax), np.float64),
            np.empty(n_rows, np.float64), np.empty(n_rows, np.int64), np.empty((n_rows, dmax), np.float64),
            np.empty(biggest, np.float64), np.empty(biggest, np.float64), np.empty(biggest, np.int64),
            np.empty(biggest, np.float64), np.zeros(CS.shape[0], np.int64), np.empty(biggest, np.int64))
    # the candidates' own arrivals of one step, copied out of the pool (at most a step's list: the pool)
    n_own = n_pq
    OWN = (np.empty(n_own, np.float64), np.empty(n_own, np.int32), np.empty(n_own, np.float64),
           np.empty(n_own, np.int64), np.empty(n_singles, np.float64))
    return forward_step_steps(GI, CI, CS, ORDER, ICS, ICL, PR, W, DS, ER, dt, n_steps, tol, budget, in_time,
                              in_value, RO, ws, SMU, SBM, SCK, STH, SED, SAD, SPB, SPQ, SV, SVI, log_t, log_i, sp_x,
                              y_out, first, counts, sp_first, work, RING, PQ, OWN, MF)


@flat_jit
def forward_step_steps(GI, CI, CS, ORDER, ICS, ICL, PR, W, DS, ER, dt, n_steps, tol, budget, in_time, in_value,
                       RO, ws, SMU, SBM, SCK, STH, SED, SAD, SPB, SPQ, SV, SVI, log_t, log_i, sp_x, y_out, first,
                       counts, sp_first, work, RING, PQ, OWN, MF):
    """forward_step's steps in the work arrays it allocated (compiled without numba's runtime)."""
    (Z, Zend, RP, in_first, src_in, no_values, ev_t, ev_i, ev_v, ev_order, sy_own, head, cand, ubuf, fbuf,
     hbuf, cbuf, kbuf, col, e_src, y, x, tmp, stack, PEX, PAF, PT, PWO, PJ, cy0, cy1, cstop, cw, deposited,
     cur) = work
    # the arrays that inlined helpers take in groups (see deliver_arrivals)
    ARR = (SMU, SPB, SPQ)
    EV = (ev_t, ev_i, ev_v)
    PIECES = (PEX, PAF, PT, PWO, PJ)
    own_t, own_c, own_w, own_next, sy_key = OWN
    SYO = (own_t, own_c, own_w, sy_own, sy_key)
    WT = (SMU, SBM, SCK, STH, SPB, SV, SVI)
    LOG = (log_t, log_i, sp_x)
    scratch = (y, x, tmp, e_src, stack)
    CLEAR = (cy0, cy1, cstop, cw)
    dm = SMU.shape[1]
    R = RING[5]
    ztot = Z.shape[0]
    counts[0] = 0
    sp_first[0] = 0
    for n in range(n_steps):
        t0 = n * dt
        t1 = (n + 1) * dt
        slot = n % R
        ring_step(PQ, n, R)
        for oi in range(ORDER.shape[0]):
            g = ORDER[oi]
            d = GI[g, DIM]
            ng = GI[g, SIZE]
            zo = GI[g, ZOFF]
            # unsigned indices: numba then adds no wraparound test for negative ones, and the loops vectorise
            # (with signed ones LLVM falls back to gathers and scatters)
            ung = np.uint64(ng)
            for k in range(d):  # the free flow to t1
                e = SED[g, k]
                a = SAD[g, k]
                base = np.uint64(zo + k * ng)
                for m in range(ung):
                    Zend[base + m] = e * Z[base + m] + a
            spiking = GI[g, SPIKING] == 1
            if spiking:
                uzo = np.uint64(zo)
                for m in range(ung):
                    RP[uzo + m] = 0.0
            n_ev = np.int64(0)  # not a literal 0: numba would compile the callers' callee once more for it
            pending = False
            for ic in range(ICS[g], ICS[g + 1]):
                c = ICL[ic]
                from_inputs = GI[CI[c, PRE], IS_INPUT] == 1
                if CS[c, CS_PER] == 1:  # the sources since the last step, into the ring
                    pending = True
                    lo = deposited[c]
                    if from_inputs:
                        deposited[c] = in_first[n + 1]
                        ok = deposit_sources(GI, CI, CS, W, DS, ER, c, lo, in_first[n + 1], in_time, src_in, in_value,
                                             n, 0, dt, n_steps, RING, PQ, e_src)
                    else:
                        deposited[c] = counts[0]
                        ok = deposit_sources(GI, CI, CS, W, DS, ER, c, lo, counts[0], log_t, log_i, no_values, n,
                                             sp_first[n], dt, n_steps, RING, PQ, e_src)
                    if not ok:
                        return ERR_ROOM
                    continue
                n_lo = larger(n - CS[c, CS_WINDOW], 0)
                if from_inputs:
                    n_ev = deliver_arrivals(GI, CI, CS, W, DS, c, n, t0, t1, in_first[n_lo], in_first[n + 1],
                                            in_time, src_in, in_value, ARR, Zend, RP, EV, n_ev, col)
                else:
                    n_ev = deliver_arrivals(GI, CI, CS, W, DS, c, n, t0, t1, sp_first[n_lo], counts[0], log_t,
                                            log_i, no_values, ARR, Zend, RP, EV, n_ev, col)
                if n_ev < 0:
                    return ERR_ROOM
            if pending:
                take_pending(GI, g, slot, Zend, RP, RING[0], dm)
            n_sy = np.int64(0)
            if spiking:
                n_cand = step_candidates(GI, g, dt, Z, Zend, RP, SMU, SBM, SCK, STH, SED, SAD, ubuf, fbuf, hbuf,
                                         cbuf, kbuf, cand, counts)
                counts[4] += n_cand
                if n_cand > 0:
                    sort_by_time(ev_t, ev_order, n_ev)
                    piece_tables(g, d, t0, t1, CI, ev_t, ev_i, ev_v, ev_order, n_ev, SMU, SBM, SPB, PIECES)
                    if pending:  # the candidates' own arrivals: the step's lists of their targets
                        n_sy = 1  # walk_candidates: the candidates have lists of their own (head)
                        own_from_pool(PQ, slot * ztot + zo, cand, n_cand, cur, head, OWN)
                    if d == 2 and n_sy == 0:
                        clear_pieces_2(g, zo, ng, Z, cand, n_cand, n_ev, STH[g], W, PIECES, SMU, SBM, SCK, CLEAR,
                                       counts)
                    status = walk_candidates(GI, CI, PR, W, g, t0, t1, tol, Z, Zend, ubuf, cand, n_cand, head,
                                             own_next, n_ev, PIECES, SYO, n_sy, WT, LOG, counts, RO, y_out, first,
                                             scratch, sp_first[n] + budget, CLEAR, MF)
                    if status == ERR_BUDGET:
                        counts[1] = n
                    if status != OK:
                        return status
            if pending:
                ring_release(PQ, slot * ztot + zo, ng)
            for k in range(d):
                base = np.uint64(zo + k * ng)
                for m in range(ung):
                    Z[base + m] = Zend[base + m]
        sp_first[n + 1] = counts[0]
        readout_sample(GI, RO, ws, Z, SV, n, y_out, first)
    for i in range(Z.shape[0]):
        if not math.isfinite(Z[i]):
            return ERR_NONFINITE
    return OK
