# ruff: noqa: F821
"""The event-accumulating engine for networks of linear populations with additive synapses.

Appended after ``engine_template.py``. When every population is linear (dx/dt = A x + b, one A per
population, real distinct eigenvalues) and every synaptic jump adds ``weight * beta`` to the target's
state, superposition makes the work per synaptic event one multiply-add per affected variable:

* forward: each population is propagated once per step to the step's end, t1; an event at t_e adds
  ``w * P(t1 - t_e) beta`` to the end-of-step state of each target (P(s) = exp(A s) from the modal
  decomposition, d exponentials per event and connection, shared by all targets);
* spikes: neurons whose end-of-step state is above threshold are walked through the step's events from
  their start-of-step state to find the exact first crossing; the earliest is emitted, its reset and
  its outgoing spikes are added by superposition, and the search repeats (zero-delay recurrence stays
  exact and in time order); a crossing located once is reused while no emitted spike reaches its
  population;
* backward: the adjoint is kept as its end-of-step equivalent, so an event's weight gradient is
  ``lambda(t1) . P(t1 - t_e) beta`` and the spike-time term ``w lambda(t1) . P(t1 - t_e) tau``.

It detects a spike only where the threshold is exceeded at the end of a step (then locates its first
crossing exactly); an excursion above threshold and back within one step is not a spike here.
"""


@jit
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


@jit
def modal_affine(g, s, MU, PIB, d, out):
    """out[:d] = integral_0^s P(u) b du = sum_k phi(mu_k, s) Pi_k b, phi = (exp(mu s) - 1) / mu."""
    for i in range(d):
        out[i] = 0.0
    for k in range(d):
        mu = MU[g, k]
        phi = s if mu == 0.0 else math.expm1(mu * s) / mu
        for i in range(d):
            out[i] += phi * PIB[g, k, i]


@jit
def modal_column(post, c, s, MU, PB, d, out):
    """out[:d] = P(s) beta_c: where a unit-weight jump of connection c at t1 - s stands at t1."""
    for i in range(d):
        out[i] = 0.0
    for k in range(d):
        e = math.exp(MU[post, k] * s)
        for i in range(d):
            out[i] += e * PB[c, k, i]


@jit
def fast_deliver(GI, CI, OC, W, Zend, g, j, s, MU, PB, TJ, forced, col):
    """Add the effect at t1 of a spike of unit j of group g that happened s before t1 (state [var, neuron]).

    A jump that raises the threshold function at once (TJ[c] * w > 0, e.g. a delta synapse onto v) may
    cause a spike at the jump itself even if the neuron is back below threshold at t1: such targets
    are marked in ``forced`` and walked through the step like neurons above threshold."""
    for r in range(GI[g, OUT_START], GI[g, OUT_START] + GI[g, OUT_COUNT]):
        c = OC[r]
        post = CI[c, POST]
        d = GI[post, DIM]
        npost = CI[c, NPOST]
        row = CI[c, WOFF] + j * npost
        modal_column(post, c, s, MU, PB, d, col)
        w_row = W[row:row + npost]
        if TJ[c] != 0.0:
            for m in range(npost):
                if w_row[m] * TJ[c] > 0.0:
                    forced[GI[post, ZOFF] + m] = 1
        for i in range(d):
            ci = col[i]
            if ci == 0.0:
                continue
            target = Zend[GI[post, ZOFF] + i * npost:GI[post, ZOFF] + (i + 1) * npost]  # views: vectorised loop
            for m in range(npost):
                target[m] += w_row[m] * ci


@jit
def gather(GI, Z, g, m, x):
    n = GI[g, SIZE]
    for i in range(GI[g, DIM]):
        x[i] = Z[GI[g, ZOFF] + i * n + m]


@jit
def to_layout(GI, Z, soa):
    """Copy of Z with every population's block reordered to [variable, neuron] (soa) or back."""
    out = np.empty_like(Z)
    for g in range(GI.shape[0]):
        if GI[g, IS_INPUT] == 1:
            continue
        n = GI[g, SIZE]
        d = GI[g, DIM]
        z0 = GI[g, ZOFF]
        for m in range(n):
            for i in range(d):
                if soa:
                    out[z0 + i * n + m] = Z[z0 + m * d + i]
                else:
                    out[z0 + m * d + i] = Z[z0 + i * n + m]
    return out


@jit
def grow(a, cap):
    out = np.empty((cap,) + a.shape[1:], a.dtype)
    out[: a.shape[0]] = a
    return out


@jit
def insert_event(ev_t, ev_i, n_ev, t, g, j, kind, spike):
    """Insert an event into the step's time-ordered list, after every event at the same time."""
    pos = n_ev
    while pos > 0 and ev_t[pos - 1] > t:
        ev_t[pos] = ev_t[pos - 1]
        ev_i[pos, :] = ev_i[pos - 1, :]
        pos -= 1
    ev_t[pos] = t
    ev_i[pos, 0] = g
    ev_i[pos, 1] = j
    ev_i[pos, 2] = kind
    ev_i[pos, 3] = spike
    return pos


@jit
def append_step_log(log_t, log_i, sp_x, counts, ev_t, ev_i, n_ev, step_x, RO, y, first):
    """Copy the step's events, in time order, to the sample's log."""
    for e in range(n_ev):
        k = counts[0]
        if k >= log_t.shape[0]:
            return ERR_CAPACITY
        log_t[k] = ev_t[e]
        log_i[k, 0] = ev_i[e, 0]
        log_i[k, 1] = ev_i[e, 1]
        log_i[k, 2] = ev_i[e, 2]
        if ev_i[e, 2] != KIND_INPUT:
            sp_x[k, :] = step_x[ev_i[e, 3], :]
            j = ev_i[e, 1]
            if RO[2] == 2 and ev_i[e, 0] == RO[0] and first[j] < 0:
                first[j] = k
                y[j] = ev_t[e]
        counts[0] = k + 1
    return OK


@jit
def free_evolution(GI, Z, Zend, dt, MU, PI, PIB, P, aff):
    """Zend = P(dt) Z + c(dt) for every population (state [variable, neuron])."""
    for g in range(GI.shape[0]):
        if GI[g, IS_INPUT] == 1:
            continue
        d = GI[g, DIM]
        n = GI[g, SIZE]
        z0 = GI[g, ZOFF]
        modal_matrix(g, dt, MU, PI, d, P)
        modal_affine(g, dt, MU, PIB, d, aff)
        for i in range(d):
            out = Zend[z0 + i * n:z0 + (i + 1) * n]
            for m in range(n):
                out[m] = aff[i]
            for q in range(d):
                pq = P[i, q]
                if pq == 0.0:
                    continue
                src = Z[z0 + q * n:z0 + (q + 1) * n]
                for m in range(n):
                    out[m] += pq * src[m]


@jit
def above_threshold(GI, PR, TH, g, Zend, flags, x, x_buf):
    """flags[m] = 1 where neuron m of g is at or above threshold at t1 (vectorised if g is affine)."""
    n = GI[g, SIZE]
    d = GI[g, DIM]
    z0 = GI[g, ZOFF]
    if TH[g, d + 1] == 1.0:  # affine threshold: TH[g, :d] . x + TH[g, d], vectorised over neurons
        acc = x_buf[:n]
        for m in range(n):
            acc[m] = TH[g, d]
        for i in range(d):
            coeff = TH[g, i]
            if coeff == 0.0:
                continue
            var = Zend[z0 + i * n:z0 + (i + 1) * n]
            for m in range(n):
                acc[m] += coeff * var[m]
        for m in range(n):
            flags[m] = 1 if acc[m] >= 0.0 else 0
    else:
        for m in range(n):
            gather(GI, Zend, g, m, x)
            flags[m] = 1 if thr(g, x[:d], params_of(GI, PR, g, m)) >= 0.0 else 0


@jit
def collect_candidates(GI, PR, Z, Zend, t0, ev_t, restart_event, restart_x, TH, x, cand_i, cand_t, cand_x, flags,
                       cand_buf, forced):
    """Neurons at or above threshold at t1, with where their walk through the step starts; -1 if the
    buffers are too small."""
    n_cand = 0
    for g in range(GI.shape[0]):
        if GI[g, SPIKING] == 0:
            continue
        d = GI[g, DIM]
        above_threshold(GI, PR, TH, g, Zend, flags, x, cand_buf)
        for j in range(GI[g, SIZE]):
            if flags[j] == 0 and forced[GI[g, ZOFF] + j] == 0:
                continue
            if n_cand >= cand_i.shape[0]:
                return -1
            start = restart_event[GI[g, ZOFF] + j]
            cand_i[n_cand, 0] = g
            cand_i[n_cand, 1] = j
            cand_i[n_cand, 2] = max(start, 0)  # the next event of the step this candidate has to apply
            cand_i[n_cand, 3] = 0
            if start < 0:  # from the start of the step
                cand_t[n_cand] = t0
                gather(GI, Z, g, j, x)
                cand_x[n_cand, :d] = x[:d]
            else:  # from its own spike earlier in this step, just after the reset
                cand_t[n_cand] = ev_t[start]
                cand_x[n_cand, :d] = restart_x[GI[g, ZOFF] + j, :d]
            n_cand += 1
    return n_cand


@jit
def known_crossing(GI, g, j, t_a, t_b, known_t, reached):
    """Whether neuron j's first crossing after t_a, in (t_a, t_b], is one an earlier search of this step
    located: no spike emitted since has reached its population (``reached`` counts them), so its
    trajectory is the same, and the crossing lies in this piece. Each search walks the step again; with
    many neurons crossing in one piece, locating every crossing again after every spike would cost
    O(spikes^2) root findings per step."""
    z = GI[g, ZOFF] + j
    tc = known_t[z, 1]
    return known_t[z, 0] == reached[g] and t_a < tc and tc <= t_b


@jit
def earliest_pending(GI, CI, OC, PR, W, Z, Zend, t0, t1, ev_t, ev_i, n_ev, restart_event, restart_x, tol, MU, PI,
                     PIB, TH, PG_, AG_, SG_, x, xs, tmp, best_x, W3, K, cand_i, cand_t, cand_x, flags, Zend_buf,
                     forced, known_t, known_x, reached, counts):
    """(time, group, neuron, kind) of the earliest spike not yet emitted in this step; x- in best_x.

    The neurons above threshold at t1 walk through the step's events in lockstep, piece by piece (a piece
    ends at an event); the first piece in which any of them reaches threshold holds the earliest spike,
    which is then located by root finding. Piece propagators are shared within a population."""
    n_cand = collect_candidates(GI, PR, Z, Zend, t0, ev_t, restart_event, restart_x, TH, x, cand_i, cand_t,
                                cand_x, flags, Zend_buf, forced)
    counts[6] += max(n_cand, 0)
    if n_cand < 0:
        return math.inf, -2, 0, 0
    for g in range(GI.shape[0]):
        SG_[g] = -1.0
    found = False
    for e in range(n_ev + 1):
        te = t1 if e == n_ev else ev_t[e]
        for c in range(n_cand):
            if cand_i[c, 2] > e:
                continue
            g = cand_i[c, 0]
            j = cand_i[c, 1]
            d = GI[g, DIM]
            p = params_of(GI, PR, g, j)
            s = te - cand_t[c]
            if s != SG_[g]:
                modal_matrix(g, s, MU, PI, d, PG_[g])
                modal_affine(g, s, MU, PIB, d, AG_[g])
                SG_[g] = s
            for i in range(d):
                acc = AG_[g, i]
                for q in range(d):
                    acc += PG_[g, i, q] * cand_x[c, q]
                xs[i] = acc
            if thr(g, xs[:d], p) >= 0.0:
                cand_i[c, 3] = 1  # crosses in (cand_t, te]; cand_x stays the state at cand_t
                cand_t[c + cand_t.shape[0] // 2] = te
                found = True
                continue
            cand_x[c, :d] = xs[:d]
            cand_t[c] = te
            counts[5] += 1
            if e == n_ev:
                continue
            # the jumps of this event and of every later one at the same instant, then the threshold: a
            # spike pushed over by a jump is logged after all of them, so its state must include them
            e2 = e
            while True:
                sg = ev_i[e2, 0]
                for r in range(GI[sg, OUT_START], GI[sg, OUT_START] + GI[sg, OUT_COUNT]):
                    cn = OC[r]
                    if CI[cn, POST] == g:
                        jump(cn, cand_x[c, :d], W[CI[cn, WOFF] + ev_i[e2, 1] * CI[cn, NPOST] + j], p, tmp)
                        cand_x[c, :d] = tmp[:d]
                if e2 + 1 < n_ev and ev_t[e2 + 1] == te:
                    e2 += 1
                else:
                    break
            cand_i[c, 2] = e2 + 1  # the next event this candidate has not seen
            if thr(g, cand_x[c, :d], p) >= 0.0:
                cand_i[c, 3] = 2  # pushed over threshold by the jump at te
                found = True
        if found:
            break
    best_t = math.inf
    best = -1
    half = cand_t.shape[0] // 2
    for c in range(n_cand):
        if cand_i[c, 3] == 0:
            continue
        g = cand_i[c, 0]
        j = cand_i[c, 1]
        d = GI[g, DIM]
        if cand_i[c, 3] == 2:
            tc = cand_t[c]
            xs[:d] = cand_x[c, :d]
        elif known_crossing(GI, g, j, cand_t[c], cand_t[c + half], known_t, reached):
            tc = known_t[GI[g, ZOFF] + j, 1]
            xs[:d] = known_x[GI[g, ZOFF] + j, :d]
        else:
            s = crossing_time(GI, g, j, cand_x[c, :d], PR, cand_t[c + half] - cand_t[c], tol, 0.0, tmp, W3, K, MU,
                              PI, PIB, PG_[g], AG_[g])
            state_after(GI, g, j, cand_x[c, :d], PR, s, 0.0, xs, W3, K, MU, PI, PIB, PG_[g], AG_[g])
            SG_[g] = -1.0
            tc = cand_t[c] + s
            known_t[GI[g, ZOFF] + j, 0] = reached[g]
            known_t[GI[g, ZOFF] + j, 1] = tc
            known_x[GI[g, ZOFF] + j, :d] = xs[:d]
        if tc < best_t:
            best_t = tc
            best = c
            best_x[:d] = xs[:d]
    if best < 0:
        return math.inf, -1, 0, 0
    kind = KIND_TRIGGERED if cand_i[best, 3] == 2 else KIND_CROSSING
    return best_t, cand_i[best, 0], cand_i[best, 1], kind


@jit
def forward_fast(GI, CI, OC, PR, W, Z0, dt, n_steps, tol, in_time, in_unit, in_group, RO, ws, MU, PI, PIB, PB, TH,
                 TJ, log_t, log_i, sp_x, y, first, counts):
    """forward() for networks of linear populations with additive synapses (see the module docstring)."""
    dmax = sp_x.shape[1]
    ztot = Z0.shape[0]
    Z = to_layout(GI, Z0, True)
    Zend = np.empty_like(Z)
    flags = np.empty(ztot + 1, np.int64)
    Zbuf = np.empty(ztot + 1, Z.dtype)
    forced = np.zeros(ztot + 1, np.int64)
    P = np.empty((dmax, dmax), np.float64)
    aff = np.empty(dmax, np.float64)
    x = np.empty(dmax, np.float64)
    xs = np.empty(dmax, np.float64)
    tmp = np.empty(dmax, np.float64)
    best_x = np.empty(dmax, np.float64)
    col = np.empty(dmax, Z.dtype)
    W3 = np.empty((4, dmax + 1, dmax + 1), np.float64)
    K = np.empty((6, dmax), np.float64)
    restart_event = np.full(ztot, -1, np.int64)  # per neuron, at ZOFF + neuron
    restart_x = np.empty((ztot, dmax), Z.dtype)
    known_t = np.full((ztot, 2), -1.0)  # per neuron: [spikes that had reached it, time] of its last crossing
    known_x = np.empty((ztot, dmax), np.float64)  # ... and the state there
    reached = np.zeros(GI.shape[0], np.float64)  # per population: spikes emitted that reach it
    ev_t = np.empty(64, Z.dtype)
    ev_i = np.empty((64, 4), np.int64)  # group, unit, kind, index into step_x
    step_x = np.empty((16, dmax), Z.dtype)
    spiked = np.empty(16, np.int64)
    cand_i = np.empty((16, 4), np.int64)  # group, neuron, first event of its walk, found (1 crossing, 2 jump)
    cand_t = np.empty(32, np.float64)  # [time reached; end of the crossing piece] (two halves)
    G = GI.shape[0]
    PG_ = np.empty((G, dmax, dmax), np.float64)  # per population: the current piece's propagator
    AG_ = np.empty((G, dmax), np.float64)
    SG_ = np.empty(G, np.float64)
    cand_x = np.empty((16, dmax), np.float64)
    counts[0] = 0
    ip = 0
    n_in = in_time.shape[0]
    for n in range(n_steps):
        t0 = n * dt
        t1 = (n + 1) * dt
        free_evolution(GI, Z, Zend, dt, MU, PI, PIB, P, aff)
        n_ev = 0
        while ip < n_in and in_time[ip] <= t1:
            if n_ev >= ev_t.shape[0]:
                ev_t = grow(ev_t, 2 * n_ev)
                ev_i = grow(ev_i, 2 * n_ev)
            ev_t[n_ev] = in_time[ip]
            ev_i[n_ev, 0] = in_group[ip]
            ev_i[n_ev, 1] = in_unit[ip]
            ev_i[n_ev, 2] = KIND_INPUT
            ev_i[n_ev, 3] = -1
            n_ev += 1
            fast_deliver(GI, CI, OC, W, Zend, in_group[ip], in_unit[ip], t1 - in_time[ip], MU, PB, TJ, forced, col)
            ip += 1
        n_spiked = 0
        while True:
            best_t, g, j, kind = earliest_pending(GI, CI, OC, PR, W, Z, Zend, t0, t1, ev_t, ev_i, n_ev,
                                                  restart_event, restart_x, tol, MU, PI, PIB, TH, PG_, AG_, SG_, x,
                                                  xs, tmp, best_x, W3, K, cand_i, cand_t, cand_x, flags, Zbuf,
                                                  forced, known_t, known_x, reached, counts)
            counts[4] += 1
            if g == -2:
                cand_i = grow(cand_i, 2 * cand_i.shape[0])
                cand_t = np.empty(2 * cand_t.shape[0], np.float64)
                cand_x = grow(cand_x, 2 * cand_x.shape[0])
                continue
            if g < 0:
                break
            if n_ev >= ev_t.shape[0]:
                ev_t = grow(ev_t, 2 * n_ev)
                ev_i = grow(ev_i, 2 * n_ev)
            if n_spiked >= spiked.shape[0]:
                spiked = grow(spiked, 2 * n_spiked)
                step_x = grow(step_x, 2 * n_spiked)
            d = GI[g, DIM]
            n_g = GI[g, SIZE]
            z = GI[g, ZOFF] + j
            p = params_of(GI, PR, g, j)
            step_x[n_spiked, :d] = best_x[:d]
            pos = insert_event(ev_t, ev_i, n_ev, best_t, g, j, kind, n_spiked)
            n_ev += 1
            reset(g, best_x, p, xs)
            if thr(g, xs, p) >= 0.0:
                counts[2] = g
                counts[3] = j
                return ERR_RESET
            modal_matrix(g, t1 - best_t, MU, PI, d, P)
            for i in range(d):  # superpose the reset onto the end-of-step state
                acc = 0.0
                for q in range(d):
                    acc += P[i, q] * (xs[q] - best_x[q])
                Zend[z + i * n_g] += acc
            if restart_event[z] < 0:
                spiked[n_spiked] = z
            else:
                spiked[n_spiked] = -1
            n_spiked += 1
            restart_event[z] = pos  # later walks of this neuron resume at its own spike, reset
            for i in range(d):
                restart_x[z, i] = xs[i]
            fast_deliver(GI, CI, OC, W, Zend, g, j, t1 - best_t, MU, PB, TJ, forced, col)
            for r in range(GI[g, OUT_START], GI[g, OUT_START] + GI[g, OUT_COUNT]):
                reached[CI[OC[r], POST]] += 1.0  # crossings known in these populations are void now
        for e in range(n_spiked):
            if spiked[e] >= 0:
                restart_event[spiked[e]] = -1
        forced[:] = 0
        status = append_step_log(log_t, log_i, sp_x, counts, ev_t, ev_i, n_ev, step_x, RO, y, first)
        if status != OK:
            return status
        Z, Zend = Zend, Z
        sample_readout(GI, RO, ws, Z, n, y, first, True)
    for i in range(ztot):
        if not math.isfinite(Z[i]):
            return ERR_NONFINITE
    return OK


@jit
def modal_transpose_apply(g, s, MU, PI, d, lam, out):
    """out = P(s)^T lam (s may be negative: the inverse flow over |s|)."""
    for i in range(d):
        out[i] = 0.0
    for k in range(d):
        e = math.exp(MU[g, k] * s)
        for i in range(d):
            acc = 0.0
            for q in range(d):
                acc += PI[g, k, q, i] * lam[q]
            out[i] += e * acc


@jit
def backward_fast(GI, CI, OC, PR, W, dt, n_steps, min_gdot, RO, ws, dLdy, SDT, log_t, log_i, n_events, sp_x, ztot,
                  first, MU, PI, PB, PT, GW, PG, counts):
    """backward() for the event-accumulating engine. lam ([variable, neuron] per population) holds each
    neuron's adjoint as its end-of-step equivalent: lambda(t) = P(t1 - t)^T lam after its last jump so far."""
    dmax = sp_x.shape[1]
    lam = np.zeros(ztot, GW.dtype)
    lam_next = np.zeros(ztot, GW.dtype)
    col = np.empty(dmax, GW.dtype)
    col2 = np.empty(dmax, GW.dtype)
    lam_j = np.empty(dmax, GW.dtype)
    lam_plus = np.empty(dmax, GW.dtype)
    lam_minus = np.empty(dmax, GW.dtype)
    diff = np.empty(dmax, GW.dtype)
    tmp = np.empty(dmax, np.float64)
    P = np.empty((dmax, dmax), np.float64)
    e = n_events - 1
    for n in range(n_steps - 1, -1, -1):
        t0 = n * dt
        t1 = (n + 1) * dt
        readout_adjoint(GI, RO, ws, dLdy, first, n, lam, True)
        while e >= 0 and (n == 0 or log_t[e] > t0):
            g = log_i[e, 0]
            j = log_i[e, 1]
            kind = log_i[e, 2]
            s = t1 - log_t[e]
            S = 0.0
            for r in range(GI[g, OUT_START], GI[g, OUT_START] + GI[g, OUT_COUNT]):
                c = OC[r]
                post = CI[c, POST]
                d = GI[post, DIM]
                npost = CI[c, NPOST]
                row = CI[c, WOFF] + j * npost
                modal_column(post, c, s, MU, PB, d, col)
                if kind != KIND_INPUT:
                    modal_column(post, c, s, MU, PT, d, col2)
                g_row = GW[row:row + npost]
                w_row = W[row:row + npost]
                for i in range(d):
                    lam_i = lam[GI[post, ZOFF] + i * npost:GI[post, ZOFF] + (i + 1) * npost]
                    ci = col[i]
                    if ci != 0.0:
                        for m in range(npost):
                            g_row[m] += lam_i[m] * ci
                    if kind != KIND_INPUT and col2[i] != 0.0:
                        acc = 0.0
                        for m in range(npost):
                            acc += w_row[m] * lam_i[m]
                        S += acc * col2[i]
            if kind != KIND_INPUT:
                d = GI[g, DIM]
                p = params_of(GI, PR, g, j)
                nt = GI[g, NTRAIN]
                pg = PG[GI[g, PGOFF] + j * nt:GI[g, PGOFF] + (j + 1) * nt]
                x_minus = sp_x[e, :d]
                gather(GI, lam, g, j, lam_j)
                modal_transpose_apply(g, s, MU, PI, d, lam_j, lam_plus)
                if kind == KIND_CROSSING:
                    gdot = thrdot(g, x_minus, p)
                    if gdot < min_gdot:
                        counts[1] += 1
                        gdot = min_gdot
                    dldt = SDT[state_index(GI, g, j, 0, True)]
                    dldt += dLdy[j] if (RO[2] == 2 and g == RO[0] and first[j] == e) else 0.0
                    spikeadj(g, x_minus, p, lam_plus[:d], S, dldt, gdot, lam_minus, pg)
                else:
                    fixedadj(g, x_minus, p, lam_plus[:d], lam_minus, pg)
                for i in range(d):
                    diff[i] = lam_minus[i] - lam_plus[i]
                modal_transpose_apply(g, -s, MU, PI, d, diff, tmp)
                for i in range(d):
                    lam[GI[g, ZOFF] + i * GI[g, SIZE] + j] += tmp[i]
            e -= 1
        for g in range(GI.shape[0]):  # back to the start of the step: lam <- P(dt)^T lam
            if GI[g, IS_INPUT] == 1:
                continue
            d = GI[g, DIM]
            nn = GI[g, SIZE]
            z0 = GI[g, ZOFF]
            modal_matrix(g, dt, MU, PI, d, P)
            for i in range(d):
                out = lam_next[z0 + i * nn:z0 + (i + 1) * nn]
                for m in range(nn):
                    out[m] = 0.0
                for q in range(d):
                    pq = P[q, i]
                    if pq == 0.0:
                        continue
                    src = lam[z0 + q * nn:z0 + (q + 1) * nn]
                    for m in range(nn):
                        out[m] += pq * src[m]
        lam, lam_next = lam_next, lam
    return OK
