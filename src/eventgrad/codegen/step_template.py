# ruff: noqa: F821
"""The step-parallel engine: exact event times, every neuron's input for a step known when the step starts.

Appended after ``engine_template.py`` and ``fast_template.py``. It runs networks of linear populations
with additive, current-like synapses (see ``engine/steppath.py``) in which every loop between spiking
populations has a connection whose delays are all >= dt: a spike sent in a step then reaches no neuron
of its own loop before that step ends (NEST's precise-spike-time scheme, Morrison et al. 2007). Each
step takes the populations in an order where connections shorter than dt point forwards, and for each:

* its arrivals in the step are known: the inputs and spikes whose time plus the connection's delay lies
  in the step (a connection without delay has delay 0). Sources are read from a window of recent steps;
  the delays of each weight row are sorted once per run, so a source keeps a cursor into its row and the
  step's arrivals from it are the next entries (no queue, nothing sorted per step, nothing dropped);
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

# columns of the step engine's connection table CS: where the connection's sorted delays start in DS, DP,
# EM; 1 for one delay per synapse; how many past steps can still send arrivals; its row in the cursors
CS_OFF, CS_PER, CS_WINDOW, CS_CURSOR = range(4)
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
def bracketed_root(g, d, y, lo, hi, f, rate, SMU, SBM, SCK, offset, tol):
    """The root of f in [lo, hi] with f(lo) < 0 <= f(hi) = f (slope rate): safeguarded Newton steps from hi."""
    s = hi
    for _ in range(100):
        s, lo, hi, done = safeguarded_newton(s, f, rate, lo, hi, tol)
        if done:
            break
        f, rate = threshold_at(g, d, y, s, SMU, SBM, SCK, offset)
    return s


@flat_jit
def first_crossing(g, d, y, s_len, SMU, SBM, SCK, offset, tol, stack, y_end):
    """The first s in [0, s_len] where f reaches 0 (f(0) < 0), or -1 if it stays below (then y_end holds the
    modes at s_len, from the same exponentials as the test).

    Most pieces end below 0 with a bound below 0 too: one set of exponentials decides them. With up to two
    modes f has at most one turning point: a crossing needs f(s_len) >= 0 or f >= 0 at its maximum inside,
    and the bracketed root is then the first. With more, intervals are cleared left to right: one whose
    bound is below 0 holds no crossing; the others are halved until their end reaches 0 (then the root is
    bracketed) or they are shorter than the tolerance (a graze that does not reach 0)."""
    fb = offset
    ub = offset
    rb = 0.0
    for k in range(d):
        yk = mode_at(SMU[g, k], SBM[g, k], y[k], s_len)
        y_end[k] = yk
        ck = SCK[g, k]
        fb += ck * yk
        ub += larger(ck * y[k], ck * yk)
        rb += ck * (SMU[g, k] * yk + SBM[g, k])
    if fb < 0.0 and ub < 0.0:
        return -1.0
    if fb >= 0.0:
        return bracketed_root(g, d, y, 0.0, s_len, fb, rb, SMU, SBM, SCK, offset, tol)
    if d <= 2:
        s = turning_point(g, d, y, s_len, SMU, SBM, SCK)
        if s < 0.0:
            return -1.0
        f, rate = threshold_at(g, d, y, s, SMU, SBM, SCK, offset)
        if f < 0.0:
            return -1.0
        return bracketed_root(g, d, y, 0.0, s, f, rate, SMU, SBM, SCK, offset, tol)
    a = 0.0
    b = s_len
    depth = 0
    while True:
        if fb >= 0.0:
            return bracketed_root(g, d, y, a, b, fb, rb, SMU, SBM, SCK, offset, tol)
        if b - a > tol and depth < STACK and threshold_bound(g, d, y, a, b, SMU, SBM, SCK, offset) >= 0.0:
            stack[depth] = b
            depth += 1
            b = 0.5 * (a + b)
        elif depth == 0:
            return -1.0  # y_end still holds the piece's end
        else:
            a = b
            depth -= 1
            b = stack[depth]
        fb, rb = threshold_at(g, d, y, b, SMU, SBM, SCK, offset)


@leaf
def advance_modes(g, d, y, s, SMU, SBM):
    for k in range(d):
        y[k] = mode_at(SMU[g, k], SBM[g, k], y[k], s)


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
def deliver_arrivals(GI, CI, CS, W, DS, DP, EM, c, n, t0, t1, lo, hi, src_t, src_i, src_v, CUR, ARR, Zend, RP, EV, n_ev,
                     SY, n_sy, col, e_src):
    """Deliver the arrivals in step n, (t0, t1], through connection c from source entries lo..hi-1: the
    inputs or the spike log (src_t times, src_i rows [group, unit], src_v values or none: 1). Row
    arrivals (one delay for the connection) are listed in ev_* ([connection, unit], value), single synapses
    (one delay per synapse) in sy_* ([connection, target], weight times value), for the walks. Returns (n_ev,
    n_sy), or (-1, -1) when a list is full. Inlined into its caller (which is why ARR = (SMU, SPB, SPQ), EV and SY
    come as tuples: a call with more than 30 arguments cannot be inlined)."""
    SMU, SPB, SPQ = ARR
    ev_t, ev_i, ev_v = EV
    sy_t, sy_i, sy_v = SY
    pre = CI[c, PRE]
    post = CI[c, POST]
    d = GI[post, DIM]
    spiking = GI[post, SPIKING] == 1
    off = CS[c, CS_OFF]
    for s in range(lo, hi):
        if src_i[s, 0] != pre:
            continue
        ts = np.float64(src_t[s])
        j = src_i[s, 1]
        v = np.float64(src_v[s]) if src_v.shape[0] > 0 else 1.0
        if CS[c, CS_PER] == 0:
            ta = ts + DS[off]
            if ta > t1 or (n > 0 and ta <= t0):
                continue
            if n_ev >= ev_t.shape[0]:
                return -1, -1
            arrival_share(c, post, d, t1 - ta, v, SMU, SPB, SPQ, col)
            deliver_row(GI, CI, W, c, post, j, col, Zend, RP, spiking)
            ev_t[n_ev] = ta
            ev_i[n_ev, 0] = c
            ev_i[n_ev, 1] = j
            ev_v[n_ev] = v
            n_ev += 1
            continue
        n_sy = deliver_singles(GI, CI, CS, W, DS, DP, EM, c, s, t1, ts, j, v, spiking, CUR, SMU, SPB, SPQ, Zend, RP,
                               sy_t, sy_i, sy_v, n_sy, e_src)
        if n_sy < 0:
            return -1, -1
    return n_ev, n_sy


@leaf
def deliver_singles(GI, CI, CS, W, DS, DP, EM, c, s, t1, ts, j, v, spiking, CUR, SMU, SPB, SPQ, Zend, RP, sy_t,
                    sy_i, sy_v, n_sy, e_src):
    """Deliver source s's single-synapse arrivals up to t1 through connection c (delays sorted along the row:
    they are the next ones from its cursor), listing each in sy_* ([connection, target], weight times
    value). Returns n_sy, or -1 when the list is full. Two modes (a LIF neuron and its synapse) take a loop
    with every constant in a register."""
    post = CI[c, POST]
    d = GI[post, DIM]
    npost = CI[c, NPOST]
    zo = GI[post, ZOFF]
    row = CS[c, CS_OFF] + j * npost
    wrow = CI[c, WOFF] + j * npost
    dm = SMU.shape[1]
    cur = CUR[CS[c, CS_CURSOR], s]
    if cur >= npost or ts + DS[row + cur] > t1:
        return n_sy
    for k in range(d):
        e_src[k] = math.exp(SMU[post, k] * (t1 - ts))
    if d == 2:
        e0 = e_src[0]
        e1 = e_src[1]
        b0 = SPB[c, 0]
        b1 = SPB[c, 1]
        q0 = SPQ[c, 0]
        q1 = SPQ[c, 1]
        # the step's arrivals from s are the row's entries cur..end-1 (its delays are sorted): find end by
        # bisection, check the lists' room once, then a loop without exits, on unsigned indices
        lo_ = cur
        hi_ = npost
        while lo_ < hi_:
            mid = (lo_ + hi_) // 2
            if ts + DS[row + mid] <= t1:
                lo_ = mid + 1
            else:
                hi_ = mid
        if n_sy + lo_ - cur > sy_t.shape[0]:
            return -1
        urow = np.uint64(row)
        uw = np.uint64(wrow)
        uzo = np.uint64(zo)
        unp = np.uint64(npost)
        udm = np.uint64(dm)
        for q in range(np.uint64(cur), np.uint64(lo_)):
            m = DP[urow + q]
            um = np.uint64(m)
            w = W[uw + um] * v
            k0 = e0 * EM[(urow + q) * udm]  # exp(mu_k (t1 - ta)) = exp(mu_k (t1 - ts)) exp(-mu_k delay)
            k1 = e1 * EM[(urow + q) * udm + np.uint64(1)]
            if not (k0 < 1e300 and k1 < 1e300):  # exp(-mu delay) overflowed (inf): a very long delay
                k0 = math.exp(SMU[post, 0] * (t1 - ts - DS[urow + q]))
                k1 = math.exp(SMU[post, 1] * (t1 - ts - DS[urow + q]))
            Zend[uzo + um] += w * k0 * b0
            Zend[uzo + unp + um] += w * k1 * b1
            if spiking:
                k_hi = larger(larger(q0, q0 * k0) + larger(q1, q1 * k1), 0.0)
                k_lo = smaller(smaller(q0, q0 * k0) + smaller(q1, q1 * k1), 0.0)
                RP[uzo + um] += larger(k_hi * w, k_lo * w)
            sy_t[n_sy] = ts + DS[urow + q]
            sy_i[n_sy, 0] = c
            sy_i[n_sy, 1] = m
            sy_v[n_sy] = w
            n_sy += 1
        cur = lo_
        CUR[CS[c, CS_CURSOR], s] = cur
        return n_sy
    while cur < npost and ts + DS[row + cur] <= t1:
        m = DP[row + cur]
        ta = ts + DS[row + cur]
        w = W[wrow + m] * v
        k_hi = 0.0
        k_lo = 0.0
        for k in range(d):
            em = EM[(row + cur) * dm + k]
            e = e_src[k] * em if em < 1e300 else math.exp(SMU[post, k] * (t1 - ta))
            Zend[zo + k * npost + m] += w * e * SPB[c, k]
            q = SPQ[c, k]
            k_hi += larger(q, q * e)
            k_lo += smaller(q, q * e)
        if spiking:
            RP[zo + m] += larger(larger(k_hi, 0.0) * w, smaller(k_lo, 0.0) * w)
        if n_sy >= sy_t.shape[0]:
            return -1
        sy_t[n_sy] = ta
        sy_i[n_sy, 0] = c
        sy_i[n_sy, 1] = m
        sy_v[n_sy] = w
        n_sy += 1
        cur += 1
    CUR[CS[c, CS_CURSOR], s] = cur
    return n_sy


@leaf
def sort_by_time(times, order, n):
    """order[:n] = indices of times[:n] in ascending time (insertion sort, stable: the lists are short)."""
    for a in range(n):
        order[a] = a
    for a in range(1, n):
        k = order[a]
        t = times[k]
        b = a - 1
        while b >= 0 and times[order[b]] > t:
            order[b + 1] = order[b]
            b -= 1
        order[b + 1] = k


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
def walk_candidates(GI, CI, PR, W, g, t0, t1, tol, Z, Zend, ubuf, cand, n_cand, head, cslot, sy_next, n_ev, PIECES,
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
    sy_t, sy_i, sy_v, sy_own = SYO
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
                n_own += 1
                r = sy_next[r]
            cslot[m] = -1
        for k in range(d):
            y[k] = Z[zo + k * ng + m]
        for a in range(1, n_own):  # insertion sort of the neuron's single-synapse arrivals by time
            q = sy_own[a]
            b = a - 1
            while b >= 0 and sy_t[sy_own[b]] > sy_t[q]:
                sy_own[b + 1] = sy_own[b]
                b -= 1
            sy_own[b + 1] = q
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
            if a_own < n_own and (which == 0 or sy_t[sy_own[a_own]] < te):
                te = sy_t[sy_own[a_own]]
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
                advance_modes(g, d, y, sc, SMU, SBM)
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
                c = sy_i[r, 0]
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
        PT[a] = ev_t[r]
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
def own_arrivals(sy_i, n_sy, cslot, head, nxt):
    """Thread the single-synapse arrivals of the candidates (cslot[target] >= 0) into one list each."""
    for r in range(n_sy):
        sl = cslot[sy_i[r, 1]]
        if sl >= 0:
            nxt[r] = head[sl]
            head[sl] = r


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
    """(row arrivals, single-synapse arrivals): the room of the lists of one step's arrivals into one
    population, ``room`` each, or less where less can come: deliver_arrivals reads, for connection c in step
    n, the sources' events of steps n - window(c) .. n: the inputs counted (all input populations together),
    at most ``budget`` spikes per step (more stop the run: ERR_BUDGET), one row arrival per event, or one per
    target with a delay per synapse. A step that fills a list returns ERR_ROOM, and the caller runs the
    sample again with twice the room (and keeps it for the next samples). The lists used to take the spike
    log's room, which grows with the trial's length; a step's arrivals do not."""
    rows = 1
    singles = 1
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
            else:
                s += most * CI[c, NPOST]
        rows = max(rows, r)
        singles = max(singles, s)
    return min(rows, room), min(singles, room)


@jit
def forward_step(GI, CI, CS, ORDER, ICS, ICL, PR, W, DS, DP, EM, Z0, dt, n_steps, tol, budget, room, in_time, in_unit,
                 in_group, in_value, RO, ws, SMU, SBM, SCK, STH, SED, SAD, SPB, SPQ, SV, SVI, log_t, log_i, sp_x,
                 y_out, first, counts, CUR, sp_first, MF):
    """Simulate one sample on the step-parallel engine (module docstring); returns a status. sp_first[n]: the
    first spike of step n in the log; CUR: per single-synapse-delay connection and source, how many of its
    sorted arrivals have happened (the backward pass reads them). counts[4:7]: neurons walked, pieces that
    took exponentials (first_crossing), pieces walked."""
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
    n_rows, n_singles = arrival_room(GI, CI, CS, ICS, ICL, in_first, n_steps, budget, room)
    # one step's arrivals into one population: row arrivals (ev_*, and the walks' pieces between them), single
    # synapses' arrivals (sy_*)
    work = (Z, np.empty(ztot, Z0.dtype), np.zeros(ztot + 1, Z0.dtype), in_first, src_in, np.empty(0, log_t.dtype),
            np.empty(n_rows, np.float64), np.empty((n_rows, 2), np.int64), np.empty(n_rows, np.float64),
            np.empty(n_rows, np.int64), np.empty(n_singles, np.float64), np.empty((n_singles, 2), np.int64),
            np.empty(n_singles, np.float64), np.empty(n_singles, np.int64), np.empty(n_singles, np.int64),
            np.full(biggest, -1, np.int64), np.empty(biggest, np.int64), np.empty(biggest, np.int64),
            np.empty(biggest, np.float64), np.empty(biggest, np.float64), np.empty(biggest, np.float64),
            np.empty(biggest, np.float64), np.empty(biggest, np.float64), np.empty(dmax + 2, Z0.dtype),
            np.empty(dmax, np.float64), y, x, np.empty(dmax, np.float64), np.empty(STACK, np.float64),
            np.empty((n_rows + 1, dmax), np.float64), np.empty((n_rows + 1, dmax), np.float64),
            np.empty(n_rows, np.float64), np.empty(n_rows, np.int64), np.empty((n_rows, dmax), np.float64),
            np.empty(biggest, np.float64), np.empty(biggest, np.float64), np.empty(biggest, np.int64),
            np.empty(biggest, np.float64))
    return forward_step_steps(GI, CI, CS, ORDER, ICS, ICL, PR, W, DS, DP, EM, dt, n_steps, tol, budget, in_time,
                              in_value, RO, ws, SMU, SBM, SCK, STH, SED, SAD, SPB, SPQ, SV, SVI, log_t, log_i, sp_x,
                              y_out, first, counts, CUR, sp_first, work, MF)


@flat_jit
def forward_step_steps(GI, CI, CS, ORDER, ICS, ICL, PR, W, DS, DP, EM, dt, n_steps, tol, budget, in_time, in_value,
                       RO, ws, SMU, SBM, SCK, STH, SED, SAD, SPB, SPQ, SV, SVI, log_t, log_i, sp_x, y_out, first,
                       counts, CUR, sp_first, work, MF):
    """forward_step's steps in the work arrays it allocated (compiled without numba's runtime)."""
    (Z, Zend, RP, in_first, src_in, no_values, ev_t, ev_i, ev_v, ev_order, sy_t, sy_i, sy_v, sy_next, sy_own, cslot,
     head, cand, ubuf, fbuf, hbuf, cbuf, kbuf, col, e_src, y, x, tmp, stack, PEX, PAF, PT, PWO, PJ, cy0, cy1, cstop,
     cw) = work
    # the arrays that inlined helpers take in groups (see deliver_arrivals)
    ARR = (SMU, SPB, SPQ)
    EV = (ev_t, ev_i, ev_v)
    SY = (sy_t, sy_i, sy_v)
    PIECES = (PEX, PAF, PT, PWO, PJ)
    SYO = (sy_t, sy_i, sy_v, sy_own)
    WT = (SMU, SBM, SCK, STH, SPB, SV, SVI)
    LOG = (log_t, log_i, sp_x)
    scratch = (y, x, tmp, e_src, stack)
    CLEAR = (cy0, cy1, cstop, cw)
    counts[0] = 0
    sp_first[0] = 0
    for n in range(n_steps):
        t0 = n * dt
        t1 = (n + 1) * dt
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
            n_sy = np.int64(0)
            for ic in range(ICS[g], ICS[g + 1]):
                c = ICL[ic]
                n_lo = larger(n - CS[c, CS_WINDOW], 0)
                if GI[CI[c, PRE], IS_INPUT] == 1:
                    n_ev, n_sy = deliver_arrivals(GI, CI, CS, W, DS, DP, EM, c, n, t0, t1, in_first[n_lo],
                                                  in_first[n + 1], in_time, src_in, in_value, CUR, ARR, Zend, RP, EV,
                                                  n_ev, SY, n_sy, col, e_src)
                else:
                    n_ev, n_sy = deliver_arrivals(GI, CI, CS, W, DS, DP, EM, c, n, t0, t1, sp_first[n_lo], counts[0],
                                                  log_t, log_i, no_values, CUR, ARR, Zend, RP, EV, n_ev, SY, n_sy, col,
                                                  e_src)
                if n_ev < 0:
                    return ERR_ROOM
            if spiking:
                n_cand = step_candidates(GI, g, dt, Z, Zend, RP, SMU, SBM, SCK, STH, SED, SAD, ubuf, fbuf, hbuf,
                                         cbuf, kbuf, cand, counts)
                counts[4] += n_cand
                if n_cand > 0:
                    sort_by_time(ev_t, ev_order, n_ev)
                    piece_tables(g, d, t0, t1, CI, ev_t, ev_i, ev_v, ev_order, n_ev, SMU, SBM, SPB, PIECES)
                    if n_sy > 0:
                        for a in range(n_cand):
                            cslot[cand[a]] = a
                            head[a] = -1
                        own_arrivals(sy_i, n_sy, cslot, head, sy_next)
                    if d == 2 and n_sy == 0:
                        clear_pieces_2(g, zo, ng, Z, cand, n_cand, n_ev, STH[g], W, PIECES, SMU, SBM, SCK, CLEAR,
                                       counts)
                    status = walk_candidates(GI, CI, PR, W, g, t0, t1, tol, Z, Zend, ubuf, cand, n_cand, head, cslot,
                                             sy_next, n_ev, PIECES, SYO, n_sy, WT, LOG, counts, RO, y_out, first,
                                             scratch, sp_first[n] + budget, CLEAR, MF)
                    if status == ERR_BUDGET:
                        counts[1] = n
                    if status != OK:
                        return status
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
