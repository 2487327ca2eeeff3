# ruff: noqa: F821
"""The generic event-driven engine, part of the engine module that every network shares (``engine_source``).

It runs a network's models through MG, a tuple of the network's model functions (``rhs``, ``lin``, ``thr``,
``jump``, ...: C callbacks compiled per network, see ``codegen/callbacks.py``), called by population or
connection index, so that it is compiled once per machine and precision whatever the models. The forward
pass splits each grid step at every event (input spike, spike found by root finding), propagates every
population across each piece (exact propagator for linear dynamics, RK4 sub-steps otherwise) and logs
the events; the backward pass walks the log in reverse, propagates the adjoint
across the same pieces and applies the jumps derived by ``eventgrad.adjoint``.  Statuses instead of
exceptions, so that numba and plain Python behave alike; the caller turns them into errors.

numba compiles a function once for every distinct tuple of argument types it is called with, and a
literal constant (0, True, KIND_INPUT) or a float32 array element is a type of its own: where call sites
of one function would differ only so, they pass np.int64(...), np.bool_(...) or np.float64(...), which give
the same numbers (a float32 widened to float64 exactly, and promoted to it inside anyway) and one compile.
"""

# columns of the population table GI
IS_INPUT, SIZE, DIM, ZOFF, POFF, NPAR, LINEAR, SHARED, SPIKING, OUT_START, OUT_COUNT, PGOFF, NTRAIN = range(13)
# columns of the connection table CI; DOFF: where the connection's delays start in DL (-1: no delay), DPER: 1
# for one delay per synapse ([pre, post], like the weights), 0 for one delay for the whole connection
PRE, POST, WOFF, NPOST, DOFF, DPER = range(6)
# statuses
# (ERR_ROOM: the step-parallel kernels' lists of one step's arrivals are full; the caller gives them more room)
OK, ERR_CAPACITY, ERR_RESET, ERR_CASCADE, ERR_NONFINITE, ERR_BUDGET, ERR_ROOM = range(7)
# kinds of logged events. A spike or input logs [group, unit, kind, -1, -1]; the arrival of a delayed spike
# logs [connection, presynaptic unit, KIND_ARRIVAL, target (-1: every target), log index of the spike sent]
KIND_CROSSING, KIND_TRIGGERED, KIND_INPUT, KIND_ARRIVAL = range(4)
# columns of a pending arrival in the queue PQ_I (its time in PQ_T, the event's value in PQ_V)
PQ_CONN, PQ_PRE, PQ_POST, PQ_SOURCE = range(4)
# positions in MF, the tuple of a network's spike functions that the fast and step-parallel engines take as an
# argument (compiled per network as C callbacks, so that these engines compile once for every network)
MF_THR, MF_THRDOT, MF_RESET, MF_SPIKEADJ, MF_FIXEDADJ = range(5)
# positions in MG, the tuple of a network's model functions that the generic engine takes (in the order of
# MODEL_ROLES in generate.py; C callbacks with float64 arrays, one set for every precision: the generic engine
# keeps the state and the adjoint in float64 and the simulator gives it float64 parameters)
(MG_RHS, MG_LIN, MG_ADJRHS, MG_PINT, MG_THR, MG_THRDOT, MG_RESET, MG_SPIKEADJ, MG_FIXEDADJ, MG_SCANROW, MG_JUMP,
 MG_JUMPROW, MG_ADJROW) = range(13)
# RW, work for the row functions (MG_SCANROW, MG_JUMPROW, MG_ADJROW): a row of weights, of neuron indices, of time
# shifts (each as long as the largest population) and the targets' states (as many times dmax)
RW_W, RW_HITS, RW_Q, RW_X = range(4)
GAUSS_NODES = (0.04691007703066800, 0.23076534494715845, 0.5, 0.76923465505284155, 0.95308992296933200)
GAUSS_WEIGHTS = (0.11846344252809454, 0.23931433524968324, 0.28444444444444444, 0.23931433524968324,
                 0.11846344252809454)


@leaf
def larger(a, b):
    """max(a, b), as Python's (b only where b > a). In the large engine functions numba's builtin max and min
    stay calls into another compiled library, which LLVM does not inline: in a loop over neurons that is two
    calls per neuron and no vector instructions. This one is inlined by numba itself."""
    return b if b > a else a


@leaf
def smaller(a, b):
    """min(a, b), as Python's (b only where b < a); see larger."""
    return b if b < a else a


@leaf
def copy_into(dst, src):
    """dst[:] = src[:len(dst)], element by element: a slice assignment needs numba's runtime, which the
    FLAT kernels are compiled without."""
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@leaf
def as_f64(src, work):
    """src copied into work[:len(src)], as float64 (the model functions take float64 arrays)."""
    for i in range(src.shape[0]):
        work[i] = src[i]
    return work[:src.shape[0]]


@flat_jit
def pending_push(pq_t, pq_i, pq_v, pq_n, t, c, i, j, e, v):
    """Queue an arrival (a binary min-heap on the time); False when the queue is full (the caller grows it)."""
    n = pq_n[0]
    if n >= pq_t.shape[0]:
        return False
    while n > 0:  # sift the hole up to where the new time fits
        parent = (n - 1) // 2
        if pq_t[parent] <= t:
            break
        pq_t[n] = pq_t[parent]
        pq_v[n] = pq_v[parent]
        for q in range(4):
            pq_i[n, q] = pq_i[parent, q]
        n = parent
    pq_t[n] = t
    pq_v[n] = v
    pq_i[n, PQ_CONN] = c
    pq_i[n, PQ_PRE] = i
    pq_i[n, PQ_POST] = j
    pq_i[n, PQ_SOURCE] = e
    pq_n[0] += 1
    return True


@flat_jit
def pending_pop(pq_t, pq_i, pq_v, pq_n, out_i):
    """Remove the earliest arrival: returns (time, value), its indices in out_i[:4]."""
    t = pq_t[0]
    v = pq_v[0]
    for q in range(4):
        out_i[q] = pq_i[0, q]
    n = pq_n[0] - 1
    pq_n[0] = n
    if n == 0:
        return t, v
    last_t = pq_t[n]
    k = 0
    while True:  # sift the last entry down from the root
        child = 2 * k + 1
        if child >= n:
            break
        if child + 1 < n and pq_t[child + 1] < pq_t[child]:
            child += 1
        if pq_t[child] >= last_t:
            break
        pq_t[k] = pq_t[child]
        pq_v[k] = pq_v[child]
        for q in range(4):
            pq_i[k, q] = pq_i[child, q]
        k = child
    pq_t[k] = last_t
    pq_v[k] = pq_v[n]
    for q in range(4):
        pq_i[k, q] = pq_i[n, q]
    return t, v


@flat_jit
def expm_small(M, m, E, T1, T2):
    """E[:m,:m] = exp(M[:m,:m]) by scaling and squaring a degree-14 Taylor polynomial (machine precision)."""
    norm = 0.0
    for i in range(m):
        r = 0.0
        for j in range(m):
            r += abs(M[i, j])
        norm = max(norm, r)
    squarings = 0
    if not math.isfinite(norm):  # the caller checks for non-finite states; never loop forever here
        norm = 0.0
    while norm > 0.25:
        norm *= 0.5
        squarings += 1
    scale = 0.5 ** squarings
    for i in range(m):
        for j in range(m):
            E[i, j] = 1.0 if i == j else 0.0
    for k in range(14, 0, -1):  # Horner: E = I + (A/k) E
        for i in range(m):
            for j in range(m):
                acc = 0.0
                for q in range(m):
                    acc += M[i, q] * E[q, j]
                T1[i, j] = acc * scale / k
        for i in range(m):
            for j in range(m):
                E[i, j] = T1[i, j] + (1.0 if i == j else 0.0)
    for _ in range(squarings):
        for i in range(m):
            for j in range(m):
                acc = 0.0
                for q in range(m):
                    acc += E[i, q] * E[q, j]
                T2[i, j] = acc
        for i in range(m):
            for j in range(m):
                E[i, j] = T2[i, j]


# propagators from a population's modal decomposition (tables MU, PI, PIB: see engine/fastpath.py)
@leaf
def modal_matrix(g, s, MU, PI, d, out):
    """out[:d,:d] = P(s) = sum_k exp(mu_k s) Pi_k."""
    for i in range(d):
        for j in range(d):
            out[i, j] = 0.0
    for k in range(d):
        e = math.exp(MU[g, k] * s)
        for i in range(d):
            for j in range(d):
                out[i, j] += e * PI[g, k, i, j]


@leaf
def modal_affine(g, s, MU, PIB, d, out):
    """out[:d] = integral_0^s P(u) b du = sum_k phi(mu_k, s) Pi_k b, phi = (exp(mu s) - 1) / mu."""
    for i in range(d):
        out[i] = 0.0
    for k in range(d):
        mu = MU[g, k]
        phi = s if mu == 0.0 else math.expm1(mu * s) / mu
        for i in range(d):
            out[i] += phi * PIB[g, k, i]


@flat_jit
def linear_propagator(g, p, d, s, W3, MG):
    """W3[2] = exp([[A, b], [0, 0]] s): the exact affine flow of population g over a time s."""
    M = W3[0]
    for i in range(d + 1):
        for j in range(d + 1):
            M[i, j] = 0.0
    MG[MG_LIN](g, p, M)
    for i in range(d + 1):
        for j in range(d + 1):
            M[i, j] *= s
    expm_small(M, d + 1, W3[2], W3[1], W3[3])


@leaf
def apply_affine(E, d, x, out):
    for i in range(d):
        acc = E[i, d]
        for j in range(d):
            acc += E[i, j] * x[j]
        out[i] = acc


@flat_jit
def rk4_step(g, x, p, h, out, K, MG):
    d = x.shape[0]
    MG[MG_RHS](g, x, p, K[0, :d])
    for i in range(d):
        K[4, i] = x[i] + 0.5 * h * K[0, i]
    MG[MG_RHS](g, K[4, :d], p, K[1, :d])
    for i in range(d):
        K[4, i] = x[i] + 0.5 * h * K[1, i]
    MG[MG_RHS](g, K[4, :d], p, K[2, :d])
    for i in range(d):
        K[4, i] = x[i] + h * K[2, i]
    MG[MG_RHS](g, K[4, :d], p, K[3, :d])
    for i in range(d):
        out[i] = x[i] + h / 6.0 * (K[0, i] + 2.0 * K[1, i] + 2.0 * K[2, i] + K[3, i])


@flat_jit
def substeps(s, h_max):
    n = int(math.ceil(s / h_max - 1e-9))
    return max(n, 1)


@flat_jit
def next_grid(t, h_max):
    """The first multiple of h_max after t (skipping one closer than 1e-9 h_max): RK4 sub-step boundaries.

    Forward and backward passes cut nonlinear trajectories at the same points, so that the recomputed
    trajectory is the one the forward pass saw and every sub-step is checked for threshold crossings.
    """
    tg = (math.floor(t / h_max) + 1.0) * h_max
    if tg - t <= 1e-9 * h_max:
        tg += h_max
    return tg


@flat_jit
def has_nonlinear(GI):
    for g in range(GI.shape[0]):
        if GI[g, IS_INPUT] == 0 and GI[g, LINEAR] == 0:
            return True
    return False


@flat_jit
def flow_all_cut(GI, Z, PR, t_a, t_b, h_max, cut, Zn, W3, K, MG):
    """Z (at t_a) -> state at t_b, cutting at the RK4 grid when the network has nonlinear dynamics."""
    t = t_a
    while True:
        te = t_b
        if cut:
            tg = next_grid(t, h_max)
            if tg < te:
                te = tg
        flow_all(GI, Z, Zn, PR, te - t, h_max, W3, K, MG)
        copy_into(Z, Zn)
        t = te
        if te >= t_b:
            return


@flat_jit
def rk4_flow(g, x, p, s, h_max, out, K, MG):
    """RK4 over s in equal sub-steps no longer than h_max."""
    d = x.shape[0]
    n = substeps(s, h_max)
    h = s / n
    copy_into(K[5, :d], x)
    for _ in range(n):
        rk4_step(g, K[5, :d], p, h, out, K, MG)
        copy_into(K[5, :d], out)
    copy_into(out[:d], K[5])


@flat_jit
def flow_one(GI, g, j, x, PR, s, h_max, out, W3, K, MG):
    """State of neuron j of population g after a time s without events."""
    d = GI[g, DIM]
    p = PR[GI[g, POFF] + j * GI[g, NPAR]:GI[g, POFF] + (j + 1) * GI[g, NPAR]]
    if GI[g, LINEAR] == 1:
        linear_propagator(g, p, d, s, W3, MG)
        apply_affine(W3[2], d, x, out)
    else:
        rk4_flow(g, x, p, s, h_max, out, K, MG)


@flat_jit
def flow_all(GI, Z, out, PR, s, h_max, W3, K, MG):
    """Every population's state after a time s without events (Z -> out)."""
    for g in range(GI.shape[0]):
        if GI[g, IS_INPUT] == 1:
            continue
        d = GI[g, DIM]
        z0 = GI[g, ZOFF]
        npar = GI[g, NPAR]
        pbase = GI[g, POFF]
        if GI[g, LINEAR] == 1 and GI[g, SHARED] == 1:
            linear_propagator(g, PR[pbase:pbase + npar], d, s, W3, MG)
            for j in range(GI[g, SIZE]):
                apply_affine(W3[2], d, Z[z0 + j * d:z0 + (j + 1) * d], out[z0 + j * d:z0 + (j + 1) * d])
        else:
            for j in range(GI[g, SIZE]):
                flow_one(GI, g, j, Z[z0 + j * d:z0 + (j + 1) * d], PR, s, h_max,
                         out[z0 + j * d:z0 + (j + 1) * d], W3, K, MG)


@leaf
def state_after(GI, g, j, x0, PR, s, h_max, xs, W3, K, MU, PI, PIB, P, aff, MG):
    """x(s) from x0 without events: modal formula when its tables are given (MU non-empty), else flow_one."""
    if MU.shape[0] == 0:
        flow_one(GI, g, j, x0, PR, s, h_max, xs, W3, K, MG)
        return
    d = GI[g, DIM]
    modal_matrix(g, s, MU, PI, d, P)
    modal_affine(g, s, MU, PIB, d, aff)
    for i in range(d):
        acc = aff[i]
        for q in range(d):
            acc += P[i, q] * x0[q]
        xs[i] = acc


@flat_jit
def crossing_time(GI, g, j, x0, PR, s_max, tol, h_max, xs, W3, K, MU, PI, PIB, P, aff, MG):
    """First s in (0, s_max] with g(x(s)) = 0, given g(x(0)) < 0 <= g(x(s_max)): safeguarded Newton."""
    p = PR[GI[g, POFF] + j * GI[g, NPAR]:GI[g, POFF] + (j + 1) * GI[g, NPAR]]
    lo = 0.0
    hi = s_max
    f_lo = MG[MG_THR](g, x0, p)
    if f_lo >= 0.0:
        return 0.0
    state_after(GI, g, j, x0, PR, hi, h_max, xs, W3, K, MU, PI, PIB, P, aff, MG)
    f_hi = MG[MG_THR](g, xs, p)
    s = lo - f_lo * (hi - lo) / (f_hi - f_lo)
    for _ in range(100):
        state_after(GI, g, j, x0, PR, s, h_max, xs, W3, K, MU, PI, PIB, P, aff, MG)
        s, lo, hi, done = safeguarded_newton(s, MG[MG_THR](g, xs, p), MG[MG_THRDOT](g, xs, p), lo, hi, tol)
        if done:
            return s
    return s


@leaf
def safeguarded_newton(s, f, rate, lo, hi, tol):
    """One step towards the first root of f, bracketed in [lo, hi] (f < 0 below it): Newton where it stays
    inside the bracket, else bisection. Returns (next s, lo, hi, converged): converged at once where f is exactly
    zero (a step from there would be zero, fall outside the open bracket and bisect away from the root)."""
    if f == 0.0:
        return s, lo, hi, True
    if f >= 0.0:
        hi = s
    else:
        lo = s
    new = s - f / rate if rate > 0.0 else s
    if rate <= 0.0 or new <= lo or new >= hi:
        new = 0.5 * (lo + hi)
    if abs(new - s) <= tol or hi - lo <= tol:
        return smaller(larger(new, lo), hi), lo, hi, True
    return new, lo, hi, False


@leaf
def neuron_slice(GI, g, j):
    d = GI[g, DIM]
    z0 = GI[g, ZOFF] + j * d
    return z0, z0 + d


@leaf
def params_of(GI, PR, g, j):
    npar = GI[g, NPAR]
    return PR[GI[g, POFF] + j * npar:GI[g, POFF] + (j + 1) * npar]


@flat_jit
def apply_jumps(GI, CI, PR, W, Z, c, j, m_from, m_to, scale, tmp, queue, q_len, check_triggers, MG, RW):
    """Connection c's jumps from unit j onto its targets m_from..m_to-1 (weights times ``scale``); queue the
    targets they push over threshold. Returns the queue's length, -1 if it is full."""
    post = CI[c, POST]
    npost = CI[c, NPOST]
    row = CI[c, WOFF] + j * npost
    wrow = RW[RW_W]
    hits = RW[RW_HITS]
    for m in range(m_from, m_to):
        wrow[m] = W[row + m] * scale
    z0, p0 = GI[post, ZOFF], GI[post, POFF]
    n = MG[MG_JUMPROW](c, Z[z0:z0 + npost * GI[post, DIM]], PR[p0:p0 + npost * GI[post, NPAR]], wrow, m_from, m_to,
                       check_triggers and GI[post, SPIKING] == 1, tmp, hits)
    for h in range(n):
        if q_len >= queue.shape[0]:
            return -1
        queue[q_len, 0] = post
        queue[q_len, 1] = hits[h]
        q_len += 1
    return q_len


@flat_jit
def deliver(GI, CI, OC, PR, W, DL, Z, t, e, g, j, scale, tmp, queue, q_len, check_triggers, pending, horizon, MG, RW):
    """Apply the jumps of a spike of unit j of group g (logged as event e at time t; weights times ``scale``,
    the value of a graded input event, else 1) through every connection without delay and queue the targets
    it pushes over; queue its arrivals through delayed connections in ``pending`` (PQ_T, PQ_I, PQ_V, PQ_N),
    except those after ``horizon`` (the trial's end: they never arrive). A replay passes no pending queue
    (its arrivals are in the log). Returns the queue's length, -1 if it is full, -2 if ``pending`` is."""
    pq_t, pq_i, pq_v, pq_n = pending
    for r in range(GI[g, OUT_START], GI[g, OUT_START] + GI[g, OUT_COUNT]):
        c = OC[r]
        npost = CI[c, NPOST]
        if CI[c, DOFF] < 0:
            q_len = apply_jumps(GI, CI, PR, W, Z, c, j, np.int64(0), npost, np.float64(scale), tmp, queue, q_len,
                                check_triggers, MG, RW)
            if q_len < 0:
                return q_len
        elif pq_t.shape[0] > 0:
            if CI[c, DPER] == 0:
                ta = t + DL[CI[c, DOFF]]
                if ta <= horizon and not pending_push(pq_t, pq_i, pq_v, pq_n, ta, c, j, np.int64(-1), e, scale):
                    return -2
                continue
            base = CI[c, DOFF] + j * npost
            for m in range(npost):
                ta = t + DL[base + m]
                if ta <= horizon and not pending_push(pq_t, pq_i, pq_v, pq_n, ta, c, j, m, e, scale):
                    return -2
    return q_len


@flat_jit
def log_event(log_t, log_i, counts, t, a0, a1, kind, a3, a4):
    """Append [a0, a1, kind, a3, a4] at time t to the log; its index, or -1 if the log is full. A log of two
    columns (the step kernels': spikes only) keeps [a0, a1]."""
    e = counts[0]
    if e >= log_t.shape[0]:
        return -1
    log_t[e] = t
    log_i[e, 0] = a0
    log_i[e, 1] = a1
    if log_i.shape[1] > 2:
        log_i[e, 2] = kind
        log_i[e, 3] = a3
        log_i[e, 4] = a4
    counts[0] = e + 1
    return e


@flat_jit
def fire(GI, CI, OC, PR, W, DL, Z, t, g, j, kind, value, log_t, log_i, sp_x, counts, tmp, queue, RO, y, first,
         pending, horizon, arrival, MG, RW):
    """Log an event at time t, reset the neuron if it spiked, deliver it, and follow any cascade. An input
    event's value (1 unless graded) is logged in sp_x[e, 0], the row a spike uses for its state. With
    kind KIND_ARRIVAL, the event is the arrival of a delayed spike through connection g from unit j, to the
    target arrival[PQ_POST] (-1: all), sent as event arrival[PQ_SOURCE]; its jumps may trigger a cascade."""
    q_len = np.int64(1)
    q = 0
    if kind == KIND_ARRIVAL:
        e = log_event(log_t, log_i, counts, t, g, j, kind, arrival[PQ_POST], arrival[PQ_SOURCE])
        if e < 0:
            return ERR_CAPACITY
        sp_x[e, 0] = value
        m_from = np.int64(0) if arrival[PQ_POST] < 0 else arrival[PQ_POST]
        m_to = CI[g, NPOST] if arrival[PQ_POST] < 0 else arrival[PQ_POST] + 1
        q_len = apply_jumps(GI, CI, PR, W, Z, g, j, m_from, m_to, np.float64(value), tmp, queue, np.int64(0),
                            np.bool_(True), MG, RW)
        if q_len < 0:
            return ERR_CASCADE
    else:
        queue[0, 0] = g
        queue[0, 1] = j
    while q < q_len:
        g = queue[q, 0]
        j = queue[q, 1]
        if q > 0 or kind == KIND_ARRIVAL:
            kind = KIND_TRIGGERED
        q += 1
        a, b = neuron_slice(GI, g, j)
        if kind == KIND_TRIGGERED and MG[MG_THR](g, Z[a:b], params_of(GI, PR, g, j)) < 0.0:
            continue  # already fired and reset earlier in this cascade
        e = log_event(log_t, log_i, counts, t, g, j, kind, np.int64(-1), np.int64(-1))
        if e < 0:
            return ERR_CAPACITY
        scale = 1.0
        if kind == KIND_INPUT:
            sp_x[e, 0] = value
            scale = value
        else:
            pj = params_of(GI, PR, g, j)
            copy_into(sp_x[e, :b - a], Z[a:b])
            if RO[2] == 2 and g == RO[0] and first[j] < 0:
                first[j] = e
                y[j] = t
            MG[MG_RESET](g, Z[a:b], pj, tmp)
            copy_into(Z[a:b], tmp)
            if MG[MG_THR](g, Z[a:b], pj) >= 0.0:
                counts[2] = g
                counts[3] = j
                return ERR_RESET
        q_len = deliver(GI, CI, OC, PR, W, DL, Z, t, e, g, j, scale, tmp, queue, q_len, np.bool_(True), pending,
                        horizon, MG, RW)
        if q_len == -2:
            return ERR_CAPACITY
        if q_len < 0:
            return ERR_CASCADE
    return OK


@flat_jit
def earliest_crossing(GI, PR, Z, Zn, s, tol, h_max, xs, W3, K, no_mu, no_pi, no_pib, no_p, no_aff, MG, RW):
    """(s*, group, neuron) of the earliest threshold crossing within the piece, or (inf, -1, -1).
    The no_* arguments are empty modal tables: the generic kernels propagate with flow_one."""
    best_s = math.inf
    best_g = -1
    best_j = -1
    hits = RW[RW_HITS]
    for g in range(GI.shape[0]):
        if GI[g, SPIKING] == 0:
            continue
        size, z0, p0 = GI[g, SIZE], GI[g, ZOFF], GI[g, POFF]
        n = MG[MG_SCANROW](g, Zn[z0:z0 + size * GI[g, DIM]], PR[p0:p0 + size * GI[g, NPAR]], size, hits)
        for h in range(n):
            j = hits[h]
            a, b = neuron_slice(GI, g, j)
            sc = crossing_time(GI, g, j, Z[a:b], PR, s, tol, h_max, xs, W3, K, no_mu, no_pi, no_pib, no_p, no_aff, MG)
            if sc < best_s:
                best_s = sc
                best_g = g
                best_j = j
    return best_s, best_g, best_j


@leaf
def state_index(GI, g, m, i, soa):
    """Where variable i of neuron m of group g lives: [neuron, variable] blocks, or [variable, neuron]."""
    if soa:
        return GI[g, ZOFF] + i * GI[g, SIZE] + m
    return GI[g, ZOFF] + m * GI[g, DIM] + i


@flat_jit
def sample_readout(GI, RO, ws, Z, n, y, first, soa):
    g = RO[0]
    for k in range(GI[g, SIZE]):
        v = Z[state_index(GI, g, k, RO[1], soa)]
        if RO[2] == 0:
            y[k] += ws[n] * v
        elif RO[2] == 1 and (n == 0 or v > y[k]):
            y[k] = v
            first[k] = n


@jit
def row_work(GI, dmax):
    """RW: work for the row functions, sized by the largest population (the targets' states zero, as the
    adjoint's row function reads them where no state is kept)."""
    n = 1
    for g in range(GI.shape[0]):
        n = max(n, GI[g, SIZE])
    return np.empty(n, np.float64), np.empty(n, np.int64), np.empty(n, np.float64), np.zeros(n * dmax, np.float64)


@jit
def forward(GI, CI, OC, PR, W, DL, Z0, dt, n_steps, h_max, tol, budget, in_time, in_unit, in_group, in_value, RO,
            ws, log_t, log_i, sp_x, Zs, every, y, first, counts, pq_t, pq_i, pq_v, MG):
    """Simulate one sample; returns a status. counts = [events logged, step at fault, error group, error unit].
    budget: the most spikes one step may hold (ERR_BUDGET past it: a runaway network stops within a few steps).
    pq_t, pq_i, pq_v: the queue of delayed spikes in flight (see deliver), empty without delays."""
    dmax = sp_x.shape[1]
    Z = Z0.astype(np.float64)  # the state in float64 whatever the run's precision (see MG above)
    Zn = np.empty_like(Z)
    xs = np.empty(dmax, np.float64)
    tmp = np.empty(dmax, np.float64)
    W3 = np.empty((4, dmax + 1, dmax + 1), np.float64)
    K = np.empty((6, dmax), np.float64)
    queue = np.empty((4 * Z.shape[0] + 64, 2), np.int64)
    no_mu, no_p, no_aff = np.zeros((0, 0)), np.zeros((0, 0)), np.zeros(0)
    no_pi, no_pib = np.zeros((0, 0, 0, 0)), np.zeros((0, 0, 0))
    pending = (pq_t, pq_i, pq_v, np.zeros(1, np.int64))
    arrival = np.empty(4, np.int64)
    RW = row_work(GI, dmax)
    return forward_steps(GI, CI, OC, PR, W, DL, dt, n_steps, h_max, tol, budget, in_time, in_unit, in_group, in_value,
                         RO, ws, log_t, log_i, sp_x, Zs, every, y, first, counts, Z, Zn, xs, tmp, W3, K, queue, no_mu,
                         no_p, no_aff, no_pi, no_pib, pending, arrival, MG, RW)


@flat_jit
def forward_steps(GI, CI, OC, PR, W, DL, dt, n_steps, h_max, tol, budget, in_time, in_unit, in_group, in_value, RO,
                  ws, log_t, log_i, sp_x, Zs, every, y, first, counts, Z, Zn, xs, tmp, W3, K, queue, no_mu, no_p,
                  no_aff, no_pi, no_pib, pending, arrival, MG, RW):
    """forward's steps, in the work arrays it allocated: compiled without numba's runtime (no allocation
    here), so the per-piece calls and slices cost no reference counting. Pieces end at the step's end, an
    input, an arrival of a delayed spike (inputs first at equal times) or a threshold crossing."""
    counts[0] = 0
    cut = has_nonlinear(GI)
    ip = 0
    n_in = in_time.shape[0]
    pq_t, pq_i, pq_v, pq_n = pending
    horizon = np.float64(n_steps * dt)
    for n in range(n_steps):
        if Zs.shape[0] > 0 and n % every == 0:
            copy_into(Zs[n // every], Z)
        t = n * dt
        t_end = (n + 1) * dt
        # spikes of this step: the events logged in it less its inputs and arrivals (each fire() logs one of
        # those, and any spikes of its cascade)
        n_not_spikes = counts[0]
        while True:
            if counts[0] - n_not_spikes > budget:
                counts[1] = n
                counts[2] = log_i[counts[0] - 1, 0]
                counts[3] = log_i[counts[0] - 1, 1]
                return ERR_BUDGET
            te = t_end
            piece = 0  # 0: to the end of the step, 1: to an input spike, 2: to an RK4 sub-step boundary, 3: to an
            # arrival of a delayed spike
            if ip < n_in and in_time[ip] <= t_end:
                te = in_time[ip]
                piece = 1
            if pq_n[0] > 0 and pq_t[0] <= t_end and (piece == 0 or pq_t[0] < te):
                te = pq_t[0]
                piece = 3
            if cut:
                tg = next_grid(t, h_max)
                if tg < te:
                    te = tg
                    piece = 2
            s = te - t
            flow_all(GI, Z, Zn, PR, s, h_max, W3, K, MG)
            best_s, best_g, best_j = earliest_crossing(GI, PR, Z, Zn, s, tol, h_max, xs, W3, K, no_mu, no_pi,
                                                       no_pib, no_p, no_aff, MG, RW)
            if best_g >= 0:
                flow_all(GI, Z, Zn, PR, best_s, h_max, W3, K, MG)
                Z, Zn = Zn, Z
                t = t + best_s
                status = fire(GI, CI, OC, PR, W, DL, Z, t, best_g, best_j, np.int64(KIND_CROSSING), 1.0, log_t, log_i,
                              sp_x, counts, tmp, queue, RO, y, first, pending, horizon, arrival, MG, RW)
                if status != OK:
                    return status
                continue
            Z, Zn = Zn, Z
            t = te
            if piece == 0:
                break
            if piece == 2:
                continue
            if piece == 3:
                n_not_spikes += 1
                value = pending_pop(pq_t, pq_i, pq_v, pq_n, arrival)[1]
                status = fire(GI, CI, OC, PR, W, DL, Z, t, arrival[PQ_CONN], arrival[PQ_PRE], np.int64(KIND_ARRIVAL),
                              value, log_t, log_i, sp_x, counts, tmp, queue, RO, y, first, pending, horizon, arrival,
                              MG, RW)
                if status != OK:
                    return status
                continue
            n_not_spikes += 1
            status = fire(GI, CI, OC, PR, W, DL, Z, t, in_group[ip], in_unit[ip], np.int64(KIND_INPUT),
                          np.float64(in_value[ip]), log_t, log_i, sp_x, counts, tmp, queue, RO, y, first, pending,
                          horizon, arrival, MG, RW)
            ip += 1
            if status != OK:
                return status
        sample_readout(GI, RO, ws, Z, n, y, first, False)
    for i in range(Z.shape[0]):
        if not math.isfinite(Z[i]):
            return ERR_NONFINITE
    return OK


# ----------------------------------------------------------------------------------------------- backward


@flat_jit
def transpose_apply(E, d, lam, out):
    """out = E[:d,:d]^T lam: the adjoint of the homogeneous part of the affine flow."""
    for i in range(d):
        acc = 0.0
        for j in range(d):
            acc += E[j, i] * lam[j]
        out[i] = acc


@flat_jit
def linear_param_integral(GI, PR, g, j, s, x_a, lam_hi, pg, W3, W3b, xs, ls, buf, MG):
    """Add integral_0^s lambda . dF/dp dt for neuron j (5-point Gauss-Legendre on exact x and lambda)."""
    d = GI[g, DIM]
    p = params_of(GI, PR, g, j)
    for i in range(5):
        u = s * GAUSS_NODES[i]
        linear_propagator(g, p, d, u, W3, MG)
        apply_affine(W3[2], d, x_a, xs)
        linear_propagator(g, p, d, s - u, W3b, MG)
        transpose_apply(W3b[2], d, lam_hi, ls)
        MG[MG_PINT](g, xs, p, ls, buf)
        for q in range(GI[g, NTRAIN]):
            pg[q] += s * GAUSS_WEIGHTS[i] * buf[q]


@flat_jit
def rk4_adjoint(GI, PR, g, j, t_a, t_b, h_max, x_a, lam, pg, K, L, buf, T, X, MG):
    """Integrate lambda (and the parameter integrals) backwards over [t_a, t_b] along the RK4 trajectory
    that starts at x_a, with the sub-steps of the forward pass. T, X: work for the sub-steps' times and
    states (float64 whatever the state's dtype), sized by backward for the longest piece, a step."""
    d = GI[g, DIM]
    p = params_of(GI, PR, g, j)
    n = 0
    t = t_a
    while t < t_b:  # the forward pass's sub-steps: cut at the RK4 grid
        t = min(next_grid(t, h_max), t_b)
        n += 1
    if n + 1 > T.shape[0]:
        raise ValueError("rk4_adjoint: a piece has more RK4 sub-steps than its work arrays hold")
    T[0] = t_a
    for i in range(n):
        T[i + 1] = min(next_grid(T[i], h_max), t_b)
    for q in range(d):
        X[0, q] = x_a[q]
    for i in range(n):
        rk4_step(g, X[i], p, T[i + 1] - T[i], X[i + 1], K, MG)
    nt = GI[g, NTRAIN]
    for i in range(n - 1, -1, -1):
        h = T[i + 1] - T[i]
        MG[MG_RHS](g, X[i], p, L[0, :d])
        MG[MG_RHS](g, X[i + 1], p, L[1, :d])
        for q in range(d):  # cubic Hermite midpoint of the forward trajectory
            L[2, q] = 0.5 * (X[i, q] + X[i + 1, q]) + h / 8.0 * (L[0, q] - L[1, q])
        # stages in reversed time: x_b at tau = 0, midpoint at h/2, x_a at h
        for stage in range(4):
            if stage == 0:
                xs = X[i + 1]
                for q in range(d):
                    L[3, q] = lam[q]
            else:
                xs = L[2, :d] if stage < 3 else X[i]
                frac = 0.5 * h if stage < 3 else h
                for q in range(d):
                    L[3, q] = lam[q] + frac * L[4 + stage - 1, q]
            MG[MG_ADJRHS](g, xs, p, L[3, :d], L[4 + stage, :d])
            if nt > 0:
                MG[MG_PINT](g, xs, p, L[3, :d], buf)
                wgt = h / 6.0 * (1.0 if stage == 0 or stage == 3 else 2.0)
                for q in range(nt):
                    pg[q] += wgt * buf[q]
        for q in range(d):
            lam[q] += h / 6.0 * (L[4, q] + 2.0 * L[5, q] + 2.0 * L[6, q] + L[7, q])


@flat_jit
def back_flow_all(GI, PR, lam, t_a, t_b, X, h_max, PG, W3, W3b, K, L, xs, ls, buf, T_w, X_w, MG):
    """Propagate every population's adjoint backwards over [t_a, t_b]; X is the state at t_a. T_w, X_w:
    rk4_adjoint's work."""
    have_state = X.shape[0] > 0
    s = t_b - t_a
    for g in range(GI.shape[0]):
        if GI[g, IS_INPUT] == 1:
            continue
        d = GI[g, DIM]
        nt = GI[g, NTRAIN]
        for j in range(GI[g, SIZE]):
            a, b = neuron_slice(GI, g, j)
            pg = PG[GI[g, PGOFF] + j * nt:GI[g, PGOFF] + (j + 1) * nt]
            if GI[g, LINEAR] == 0:
                rk4_adjoint(GI, PR, g, j, t_a, t_b, h_max, X[a:b], lam[a:b], pg, K, L, buf, T_w, X_w, MG)
                continue
            if nt > 0 and have_state:
                linear_param_integral(GI, PR, g, j, s, X[a:b], lam[a:b], pg, W3, W3b, xs, ls, buf, MG)
            if j == 0 or GI[g, SHARED] == 0 or (nt > 0 and have_state):  # the integral reuses W3
                linear_propagator(g, params_of(GI, PR, g, j), d, s, W3, MG)
            transpose_apply(W3[2], d, lam[a:b], ls)
            for q in range(d):
                lam[a + q] = ls[q]


@flat_jit
def replay_step(GI, CI, OC, PR, W, DL, Z, t0, t_end, e_first, e_last, log_t, log_i, sp_x, h_max, Zpre, Zpost, W3, K,
                tmp, Zn, queue, no_pending, MG, RW):
    """Advance Z (at t0) through the logged events e_first..e_last to t_end (nothing past the last event if
    t_end < 0), recording the states just before and just after each event when Zpre has rows. Zn, queue:
    work (a state; one row)."""
    cut = has_nonlinear(GI)
    record = Zpre.shape[0] > 0
    t = t0
    for k in range(e_first, e_last + 1):
        flow_all_cut(GI, Z, PR, t, np.float64(log_t[k]), h_max, cut, Zn, W3, K, MG)
        t = log_t[k]
        if record:
            copy_into(Zpre[k - e_first], Z)
        g = log_i[k, 0]
        j = log_i[k, 1]
        scale = 1.0
        if log_i[k, 2] == KIND_ARRIVAL:  # g is the connection; its arrivals are logged, not queued again
            m = log_i[k, 3]
            apply_jumps(GI, CI, PR, W, Z, g, j, np.int64(0) if m < 0 else m, CI[g, NPOST] if m < 0 else m + 1,
                        np.float64(sp_x[k, 0]), tmp,
                        queue, np.int64(0), np.bool_(False), MG, RW)
        else:
            if log_i[k, 2] == KIND_INPUT:
                scale = sp_x[k, 0]
            else:
                a, b = neuron_slice(GI, g, j)
                MG[MG_RESET](g, Z[a:b], params_of(GI, PR, g, j), tmp)
                copy_into(Z[a:b], tmp)
            deliver(GI, CI, OC, PR, W, DL, Z, np.float64(log_t[k]), np.int64(k), g, j, scale, tmp, queue, np.int64(0),
                    np.bool_(False), no_pending, 0.0, MG, RW)
        if record:
            copy_into(Zpost[k - e_first], Z)
    if t_end >= 0.0:
        flow_all_cut(GI, Z, PR, t, t_end, h_max, cut, Zn, W3, K, MG)


@jit
def step_first_events(log_t, n_events, n_steps, dt):
    """first[n] = index of the first logged event of step n (first[n_steps] = n_events), as backward() splits."""
    first = np.empty(n_steps + 1, np.int64)
    first[n_steps] = n_events
    e = n_events - 1
    for n in range(n_steps - 1, -1, -1):
        while e >= 0 and (n == 0 or log_t[e] > n * dt):
            e -= 1
        first[n] = e + 1
    return first


@flat_jit
def restore_segment(GI, CI, OC, PR, W, DL, Zs, every, n, dt, first, log_t, log_i, sp_x, h_max, seg, W3, K, tmp, Z, Zn,
                    queue, none, no_pending, MG, RW):
    """Recompute the start-of-step states of the checkpoint segment holding step n into seg (row = step
    - segment start) from the checkpoint Zs[n // every]: O(N T / every + N every) memory instead of O(N T).
    Z, Zn, queue: work (two states, one row); none: a state array with no rows."""
    s0 = (n // every) * every
    copy_into(Z, Zs[n // every])
    for m in range(s0, n + 1):
        copy_into(seg[m - s0], Z)
        if m < n:
            replay_step(GI, CI, OC, PR, W, DL, Z, m * dt, (m + 1) * dt, first[m], first[m + 1] - 1, log_t, log_i,
                        sp_x, h_max, none, none, W3, K, tmp, Zn, queue, no_pending, MG, RW)


@flat_jit
def target_state_before(GI, CI, OC, PR, W, Zmid, g, j, scale, r, m, x_pre, x_in, MG):
    """State of target m of connection OC[r] just before that connection's jump (earlier ones applied).
    x_in: work, the state before each earlier jump."""
    c = OC[r]
    post = CI[c, POST]
    a, b = neuron_slice(GI, post, m)
    copy_into(x_pre[:b - a], Zmid[a:b])
    for r2 in range(GI[g, OUT_START], r):
        c2 = OC[r2]
        if CI[c2, POST] == post and CI[c2, DOFF] < 0:
            copy_into(x_in[:b - a], x_pre)
            MG[MG_JUMP](c2, x_in[:b - a], W[CI[c2, WOFF] + j * CI[c2, NPOST] + m] * scale, params_of(GI, PR, post, m),
                 x_pre)


@flat_jit
def target_rows_adjoint(GI, CI, OC, PR, W, Zmid, lam, GW, PG, g, j, c, r, m_from, m_to, scale, x_pre, x_in, tmp, MG,
                        RW):
    """Undo the jumps of connection c from unit j (of group g) onto targets m_from..m_to-1 backwards (weights
    times ``scale``): weight and parameter gradients, the adjoint's jumps; each target's time shift into
    RW[RW_Q][m]. The targets' states just before the jump come from Zmid (none without the state): as they
    are for the arrival of a delayed spike (r < 0), after the jumps of the spike's connections before c = OC[r]
    otherwise."""
    post = CI[c, POST]
    npost = CI[c, NPOST]
    row = CI[c, WOFF] + j * npost
    d = GI[post, DIM]
    nt = GI[post, NTRAIN]
    wrow = RW[RW_W]
    X = RW[RW_X]
    z0 = GI[post, ZOFF]
    if Zmid.shape[0] > 0 and r < 0:
        copy_into(X[m_from * d:m_to * d], Zmid[z0 + m_from * d:z0 + m_to * d])
    elif Zmid.shape[0] > 0:
        for m in range(m_from, m_to):
            target_state_before(GI, CI, OC, PR, W, Zmid, g, j, scale, r, m, x_pre, x_in, MG)
            copy_into(X[m * d:(m + 1) * d], x_pre[:d])
    for m in range(m_from, m_to):
        wrow[m] = W[row + m] * scale
    p0, pg0 = GI[post, POFF], GI[post, PGOFF]
    MG[MG_ADJROW](c, X[:npost * d], PR[p0:p0 + npost * GI[post, NPAR]], lam[z0:z0 + npost * d], wrow, scale, m_from,
                  m_to, RW[RW_Q], GW[row:row + npost], PG[pg0:pg0 + npost * nt], tmp)


@flat_jit
def arrival_adjoint(GI, CI, OC, PR, W, k, log_i, sp_x, Zmid, lam, GW, GD, PG, shift, x_pre, x_in, tmp, MG, RW):
    """Undo the arrival of a delayed spike (event k) backwards: each target's jump gives its weight and
    parameter gradients and its time shift q = lambda+ . (dR/dx F(x-) - F(R(x-))), which is dL/d(delay) (a later
    arrival moves the jump later) and goes to the sending spike's time term, shift[sending event]."""
    c = log_i[k, 0]
    j = log_i[k, 1]
    npost = CI[c, NPOST]
    m_from = 0 if log_i[k, 3] < 0 else log_i[k, 3]
    m_to = npost if log_i[k, 3] < 0 else log_i[k, 3] + 1
    target_rows_adjoint(GI, CI, OC, PR, W, Zmid, lam, GW, PG, CI[c, PRE], j, c, np.int64(-1), m_from, m_to,
                        np.float64(sp_x[k, 0]), x_pre, x_in, tmp, MG, RW)
    q = RW[RW_Q]
    for m in range(m_from, m_to):
        GD[CI[c, DOFF] + (j * npost + m if CI[c, DPER] == 1 else 0)] += q[m]
        shift[log_i[k, 4]] += q[m]


@flat_jit
def event_adjoint(GI, CI, OC, PR, W, k, log_i, sp_x, Zmid, lam, GW, GD, PG, dLdy, SDT, RO, first, min_gdot, counts,
                  x_pre, x_in, tmp, shift, MG, RW):
    """Undo event k backwards: targets' jumps (weight and parameter gradients), then the spike's own jump.
    shift[k]: the time shifts that the arrivals of this spike through delayed connections collected."""
    kind = log_i[k, 2]
    if kind == KIND_ARRIVAL:
        arrival_adjoint(GI, CI, OC, PR, W, k, log_i, sp_x, Zmid, lam, GW, GD, PG, shift, x_pre, x_in, tmp, MG, RW)
        return
    g = log_i[k, 0]
    j = log_i[k, 1]
    scale = sp_x[k, 0] if kind == KIND_INPUT else 1.0  # a graded input's value multiplies its weights
    S = shift[k]
    q = RW[RW_Q]
    for r in range(GI[g, OUT_START] + GI[g, OUT_COUNT] - 1, GI[g, OUT_START] - 1, -1):
        c = OC[r]
        if CI[c, DOFF] >= 0:
            continue  # its arrivals come later in the log and were undone already
        npost = CI[c, NPOST]
        target_rows_adjoint(GI, CI, OC, PR, W, Zmid, lam, GW, PG, g, j, c, r, np.int64(0), npost, np.float64(scale),
                            x_pre, x_in, tmp, MG, RW)
        for m in range(npost):
            S += q[m]
    if kind == KIND_INPUT:
        return
    d = GI[g, DIM]
    a, b = neuron_slice(GI, g, j)
    p = params_of(GI, PR, g, j)
    nt = GI[g, NTRAIN]
    pg = PG[GI[g, PGOFF] + j * nt:GI[g, PGOFF] + (j + 1) * nt]
    x_minus = as_f64(sp_x[k, :d], x_in)  # the state logged at the spike, in the run's precision
    if kind == KIND_CROSSING:
        gdot = MG[MG_THRDOT](g, x_minus, p)
        if gdot < min_gdot:
            counts[1] += 1
            gdot = min_gdot
        dldt = SDT[a] + (dLdy[j] if (RO[2] == 2 and g == RO[0] and first[j] == k) else 0.0)
        MG[MG_SPIKEADJ](g, x_minus, p, lam[a:b], S, dldt, gdot, tmp, pg)
    else:
        MG[MG_FIXEDADJ](g, x_minus, p, lam[a:b], tmp, pg)
    copy_into(lam[a:a + d], tmp)


@flat_jit
def readout_adjoint(GI, RO, ws, dLdy, first, n, lam, soa):
    """Add dL/dx(t_n) of the readout's grid samples to lambda at the end of step n."""
    g = RO[0]
    for k in range(GI[g, SIZE]):
        if RO[2] == 0:
            lam[state_index(GI, g, k, RO[1], soa)] += dLdy[k] * ws[n]
        elif RO[2] == 1 and first[k] == n:
            lam[state_index(GI, g, k, RO[1], soa)] += dLdy[k]


@jit
def backward(GI, CI, OC, PR, W, DL, dt, n_steps, h_max, min_gdot, RO, ws, dLdy, SDT, log_t, log_i, n_events, sp_x,
             Zs, every, ztot, first, GW, GD, PG, counts, MG):
    """Adjoint pass of one sample: accumulates dL/dW into GW, dL/d(delay) into GD (laid out like DL) and
    dL/dp (per neuron) into PG.

    SDT[state_index(g, j, 0)] is dL/dt_k for every spike of neuron j of group g (a loss linear in spike
    times, such as the spike-count regulariser's); the first-spike readout adds its own term."""
    dmax = sp_x.shape[1]
    lam = np.zeros(ztot, np.float64)  # float64 whatever the run's precision, as forward's state
    W3 = np.empty((4, dmax + 1, dmax + 1), np.float64)
    W3b = np.empty((4, dmax + 1, dmax + 1), np.float64)
    K = np.empty((6, dmax), np.float64)
    L = np.empty((8, dmax), np.float64)
    xs = np.empty(dmax, np.float64)
    ls = np.empty(dmax, np.float64)
    x_pre = np.zeros(dmax, np.float64)
    x_in = np.empty(dmax, np.float64)
    tmp = np.empty(dmax, np.float64)
    buf = np.empty(max(dmax, PG.shape[0]) + 1, np.float64)
    n_sub = int(math.ceil(dt / h_max)) + 4 if h_max < dt else 5  # RK4 sub-steps of a piece (within a step), with room
    T_w = np.empty(n_sub, np.float64)
    X_w = np.empty((n_sub, dmax), np.float64)
    store_state = Zs.shape[0] > 0
    no_state = np.empty((0,), np.float64)
    step_first = step_first_events(log_t, n_events, n_steps, dt)
    seg = np.empty((every if store_state else 0, ztot), np.float64)
    max_ev = 0  # the most events in one step: the rows of the states recorded around them
    for n in range(n_steps):
        max_ev = max(max_ev, step_first[n + 1] - step_first[n])
    Zpre = np.empty((max_ev if store_state else 0, ztot), np.float64)
    Zpost = np.empty((max_ev if store_state else 0, ztot), np.float64)
    Zw = np.empty((3, ztot), np.float64)  # work: a state replayed, its next piece, a state between jumps
    queue = np.empty((1, 2), np.int64)
    none = np.empty((0, ztot), np.float64)
    shift = np.zeros(n_events, np.float64)
    no_pending = (np.empty(0, np.float64), np.empty((0, 4), np.int64), np.empty(0, np.float64), np.zeros(1, np.int64))
    RW = row_work(GI, dmax)
    return backward_steps(GI, CI, OC, PR, W, DL, dt, n_steps, h_max, min_gdot, RO, ws, dLdy, SDT, log_t, log_i,
                          n_events, sp_x, Zs, every, first, GW, GD, PG, counts, lam, W3, W3b, K, L, xs, ls, x_pre, x_in,
                          tmp, buf, T_w, X_w, no_state, step_first, seg, Zpre, Zpost, Zw, queue, none, shift,
                          no_pending, MG, RW)


@flat_jit
def backward_steps(GI, CI, OC, PR, W, DL, dt, n_steps, h_max, min_gdot, RO, ws, dLdy, SDT, log_t, log_i, n_events,
                   sp_x, Zs, every, first, GW, GD, PG, counts, lam, W3, W3b, K, L, xs, ls, x_pre, x_in, tmp, buf, T_w,
                   X_w, no_state, step_first, seg, Zpre, Zpost, Zw, queue, none, shift, no_pending, MG, RW):
    """backward's steps, in the work arrays it allocated: compiled without numba's runtime (no allocation
    here), so the per-event and per-piece calls and slices cost no reference counting."""
    store_state = Zs.shape[0] > 0
    e = n_events - 1
    for n in range(n_steps - 1, -1, -1):
        t0 = n * dt
        if store_state and (n == n_steps - 1 or n % every == every - 1):
            restore_segment(GI, CI, OC, PR, W, DL, Zs, every, n, dt, step_first, log_t, log_i, sp_x, h_max, seg, W3,
                            K, tmp, Zw[0], Zw[1], queue, none, no_pending, MG, RW)
        readout_adjoint(GI, RO, ws, dLdy, first, n, lam, False)
        e_lo = e
        while e_lo >= 0 and (n == 0 or log_t[e_lo] > t0):
            e_lo -= 1
        n_ev = e - e_lo
        Zstart = seg[n % every] if store_state else no_state
        if store_state and n_ev > 0:
            copy_into(Zw[0], Zstart)
            replay_step(GI, CI, OC, PR, W, DL, Zw[0], t0, -1.0, e_lo + 1, e, log_t, log_i, sp_x, h_max, Zpre, Zpost,
                        W3, K, tmp, Zw[1], queue, no_pending, MG, RW)
        t_hi = (n + 1) * dt
        for k in range(e, e_lo, -1):
            row = k - e_lo - 1
            start = Zpost[row] if store_state else no_state
            back_flow_all(GI, PR, lam, np.float64(log_t[k]), t_hi, start, h_max, PG, W3, W3b, K, L, xs, ls, buf, T_w,
                          X_w, MG)
            Zmid = no_state
            if store_state:
                Zmid = Zw[2]
                copy_into(Zmid, Zpre[row])
                if log_i[k, 2] < KIND_INPUT:  # a spike: the state its jumps met is after its reset
                    a, b = neuron_slice(GI, log_i[k, 0], log_i[k, 1])
                    MG[MG_RESET](log_i[k, 0], Zmid[a:b], params_of(GI, PR, log_i[k, 0], log_i[k, 1]), tmp)
                    copy_into(Zmid[a:b], tmp)
            event_adjoint(GI, CI, OC, PR, W, k, log_i, sp_x, Zmid, lam, GW, GD, PG, dLdy, SDT, RO, first, min_gdot,
                          counts, x_pre, x_in, tmp, shift, MG, RW)
            t_hi = log_t[k]
        back_flow_all(GI, PR, lam, t0, t_hi, Zstart, h_max, PG, W3, W3b, K, L, xs, ls, buf, T_w, X_w, MG)
        e = e_lo
    return OK
