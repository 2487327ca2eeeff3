# ruff: noqa: F821
"""The step-parallel engine's backward pass (see ``step_template.py``, appended before this file).

Step by step and population by population in reverse order, the adjoint in modal coordinates eta =
V^T lambda is kept as its end-of-step equivalent. A neuron that spiked in the step gets one equivalent per
stretch between its spikes (spike_adjoints); single-synapse arrivals read the stretch that holds them, row
arrivals are undone latest first while each spiking neuron's equivalent is switched as they pass its
spikes (row_gradients_in_time). Every arrival's time shift is dL/d(its delay) and joins the adjoint jump
of the spike that sent it.
"""
@leaf
def equivalent_at(GI, g, m, ta, ETA, run_lo, run_hi, seg, log_t, eta):
    """eta[:d]: neuron m's adjoint end-of-step equivalent valid at time ta: the stretch after its last spike
    uses ETA, an earlier one the equivalent stored with the first spike after ta (a spike at ta itself
    came before the arrival, as in the walk)."""
    d = GI[g, DIM]
    ng = GI[g, SIZE]
    zo = GI[g, ZOFF]
    for k in range(d):
        eta[k] = ETA[zo + k * ng + m]
    if run_lo[m] < 0:
        return
    for e in range(run_lo[m], run_hi[m]):
        if log_t[e] > ta:
            for k in range(d):
                eta[k] = seg[e, k]
            return


@leaf
def spike_adjoints(GI, PR, PG, g, n, dt, lo_e, hi_e, log_t, log_i, sp_x, ETA, seg, shift, run_lo, run_hi, spk,
                   SMU, SV, SVI, SDT, dLdy, RO, first, min_gdot, counts, eta, lam, out, MF):
    """The adjoint jumps at the spikes of g in step n (log entries lo_e..hi_e-1, by neuron in time order),
    last first: seg[e] gets the end-of-step equivalent valid before spike e. Returns how many neurons
    spiked (listed in spk, with their log ranges in run_lo, run_hi)."""
    d = GI[g, DIM]
    ng = GI[g, SIZE]
    zo = GI[g, ZOFF]
    nt = GI[g, NTRAIN]
    p = params_of(GI, PR, g, 0)
    t1 = (n + 1) * dt
    n_spk = 0
    e = lo_e
    while e < hi_e:
        if log_i[e, 0] != g:
            e += 1
            continue
        m = log_i[e, 1]
        start = e
        while e < hi_e and log_i[e, 0] == g and log_i[e, 1] == m:
            e += 1
        run_lo[m] = start
        run_hi[m] = e
        spk[n_spk] = m
        n_spk += 1
        for k in range(d):
            eta[k] = ETA[zo + k * ng + m]
        for q in range(e - 1, start - 1, -1):
            r = t1 - log_t[q]
            for k in range(d):  # eta(t_q+) = exp(mu r) eta_equivalent
                eta[k] *= math.exp(SMU[g, k] * r)
            for i in range(d):  # lambda(t_q+) = V^-T eta(t_q+)
                acc = 0.0
                for k in range(d):
                    acc += SVI[g, k, i] * eta[k]
                lam[i] = acc
            x_minus = sp_x[q, :d]
            gdot = MF[MF_THRDOT](g, x_minus, p)
            if gdot < min_gdot:
                counts[1] += 1
                gdot = min_gdot
            dldt = SDT[zo + m] + (dLdy[m] if (RO[2] == 2 and g == RO[0] and first[m] == q) else 0.0)
            MF[MF_SPIKEADJ](g, x_minus, p, lam[:d], shift[q], dldt, gdot, out, PG[GI[g, PGOFF] + m * nt:GI[g, PGOFF] +
                                                                        (m + 1) * nt])
            for k in range(d):  # eta(t_q-) = V^T lambda(t_q-), back to its end-of-step equivalent
                acc = 0.0
                for i in range(d):
                    acc += SV[g, i, k] * out[i]
                eta[k] = acc * math.exp(-SMU[g, k] * r)
                seg[q, k] = eta[k]
    return n_spk


@leaf
def row_gradient(GI, CI, W, c, j, v, ta, t1, need_shift, ETA, SMU, SPB, GW, cb):
    """A row arrival's weight gradients (GW's row j of connection c += v exp(mu (t1 - ta)) (V^-1 beta) . eta for
    every target, eta the equivalents in ETA) and, where ``need_shift``, its time shift q = -sum_m w_m v
    exp(mu (t1 - ta)) (mu V^-1 beta) . eta_m (returned; 0 otherwise)."""
    post = CI[c, POST]
    d = GI[post, DIM]
    npost = CI[c, NPOST]
    un = np.uint64(npost)
    uz = np.uint64(GI[post, ZOFF])
    uw = np.uint64(CI[c, WOFF] + j * npost)
    q = 0.0
    for k in range(d):
        cb[k] = v * math.exp(SMU[post, k] * (t1 - ta)) * SPB[c, k]
    if d == 2:  # the common case in one pass over the rows
        c0 = cb[0]
        c1 = cb[1]
        for m in range(un):
            GW[uw + m] += c0 * ETA[uz + m] + c1 * ETA[uz + un + m]
        if need_shift:
            q = -dot_pair(ETA, uz, uz + un, W, uw, npost, SMU[post, 0] * c0, SMU[post, 1] * c1)
        return q
    for k in range(d):
        ck = cb[k]
        base = uz + np.uint64(k) * un
        for m in range(un):
            GW[uw + m] += ck * ETA[base + m]
        if need_shift:
            q -= SMU[post, k] * ck * dot(ETA, base, W, uw, npost)
    return q


@reduce_jit
def dot_pair(a, a0, a1, b, b0, n, c0, c1):
    """sum(b[b0 + m] * (c0 a[a0 + m] + c1 a[a1 + m]) for m < n), in float64, vectorised (see dot)."""
    acc = 0.0
    ua0 = np.uint64(a0)
    ua1 = np.uint64(a1)
    ub = np.uint64(b0)
    for m in range(np.uint64(n)):
        acc += np.float64(b[ub + m]) * (c0 * a[ua0 + m] + c1 * a[ua1 + m])
    return acc


@leaf
def single_gradients(GI, CI, CS, W, DS, DP, EM, c, s, n, t0, t1, ts, j, v, from_log, CUR, SMU, SPB, ETA, run_lo,
                     run_hi, seg, log_t, GW, GD, shift, eta, e_src):
    """Undo source s's single-synapse arrivals in step n through connection c, moving its cursor back: each
    one's weight gradient and time shift (dL/d its delay, and the sending spike's term)."""
    post = CI[c, POST]
    d = GI[post, DIM]
    npost = CI[c, NPOST]
    zo = GI[post, ZOFF]
    row = CS[c, CS_OFF] + j * npost
    uw = np.uint64(CI[c, WOFF] + j * npost)
    cur = CUR[CS[c, CS_CURSOR], s]
    if cur == 0 or (n > 0 and ts + DS[row + cur - 1] <= t0):
        return
    for k in range(d):
        e_src[k] = math.exp(SMU[post, k] * (t1 - ts))
    dm = SMU.shape[1]
    if d == 2:  # two modes: every constant in a register
        c0 = v * e_src[0] * SPB[c, 0]
        c1 = v * e_src[1] * SPB[c, 1]
        mu0 = SMU[post, 0]
        mu1 = SMU[post, 1]
        goff = np.uint64(CI[c, DOFF] + j * npost)
        # the step's arrivals are entries lo_..cur-1 of the sorted row: find lo_ by bisection, then undo them
        # latest first in a loop without exits, on unsigned indices
        lo_ = 0
        if n > 0:
            hi_ = cur
            while lo_ < hi_:
                mid = (lo_ + hi_) // 2
                if ts + DS[row + mid] > t0:
                    hi_ = mid
                else:
                    lo_ = mid + 1
        urow = np.uint64(row)
        uzo = np.uint64(zo)
        unp = np.uint64(npost)
        udm = np.uint64(dm)
        for i in range(np.uint64(cur - lo_)):
            q_ = np.uint64(cur - 1) - i
            m = DP[urow + q_]
            um = np.uint64(m)
            k0 = c0 * EM[(urow + q_) * udm]
            k1 = c1 * EM[(urow + q_) * udm + np.uint64(1)]
            if not (abs(k0) < 1e300 and abs(k1) < 1e300):  # exp(-mu delay) overflowed: a very long delay
                k0 = v * math.exp(mu0 * (t1 - ts - DS[urow + q_])) * SPB[c, 0]
                k1 = v * math.exp(mu1 * (t1 - ts - DS[urow + q_])) * SPB[c, 1]
            if run_lo[m] >= 0:  # the target spiked in this step: the equivalent of the stretch holding the arrival
                equivalent_at(GI, post, m, ts + DS[urow + q_], ETA, run_lo, run_hi, seg, log_t, eta)
                a0 = k0 * eta[0]
                a1 = k1 * eta[1]
            else:
                a0 = k0 * ETA[uzo + um]
                a1 = k1 * ETA[uzo + unp + um]
            GW[uw + um] += a0 + a1
            q = -(mu0 * a0 + mu1 * a1) * W[uw + um]
            GD[goff + um] += q
            if from_log:
                shift[s] += q
        cur = lo_
        CUR[CS[c, CS_CURSOR], s] = cur
        return
    while cur > 0 and (n == 0 or ts + DS[row + cur - 1] > t0):
        cur -= 1
        m = DP[row + cur]
        ta = ts + DS[row + cur]
        if run_lo[m] >= 0:  # the target spiked in this step: the equivalent of the stretch holding ta
            equivalent_at(GI, post, m, ta, ETA, run_lo, run_hi, seg, log_t, eta)
        gw = 0.0
        q = 0.0
        for k in range(d):
            em = EM[(row + cur) * dm + k]
            ek = e_src[k] * em if em < 1e300 else math.exp(SMU[post, k] * (t1 - ta))
            ck = v * ek * SPB[c, k] * (eta[k] if run_lo[m] >= 0 else ETA[zo + k * npost + m])
            gw += ck
            q -= SMU[post, k] * ck
        GW[uw + np.uint64(m)] += gw
        q *= W[uw + np.uint64(m)]
        GD[CI[c, DOFF] + j * npost + m] += q
        if from_log:
            shift[s] += q
    CUR[CS[c, CS_CURSOR], s] = cur


@leaf
def arrival_gradients(GI, CI, CS, W, DS, DP, EM, c, n, t0, t1, lo, hi, src_t, src_i, src_v, from_log, CUR, SMU, SPB,
                      ETA, RUNS, log_t, GW, GD, shift, eta, e_src, BW, n_bw):
    """The arrivals of step n through connection c from source entries lo..hi-1, as deliver_arrivals found
    them: single synapses are undone at once (single_gradients); row arrivals are listed in bw_* ([connection,
    unit, source, from the log]) to be undone in time order (see backward_step_steps). Returns n_bw. Inlined
    into its caller, some arrays grouped (RUNS = (run_lo, run_hi, seg), BW = (bw_t, bw_i, bw_v)): a call passes
    every array on the stack, and one with more than 30 arguments cannot be inlined."""
    run_lo, run_hi, seg = RUNS
    bw_t, bw_i, bw_v = BW
    pre = CI[c, PRE]
    off = CS[c, CS_OFF]
    for s in range(lo, hi):
        if src_i[s, 0] != pre:
            continue
        ts = np.float64(src_t[s])
        j = src_i[s, 1]
        v = np.float64(src_v[s]) if src_v.shape[0] > 0 else 1.0
        if CS[c, CS_PER] == 1:
            single_gradients(GI, CI, CS, W, DS, DP, EM, c, s, n, t0, t1, ts, j, v, from_log, CUR, SMU, SPB, ETA,
                             run_lo, run_hi, seg, log_t, GW, GD, shift, eta, e_src)
            continue
        ta = ts + DS[off]
        if ta > t1 or (n > 0 and ta <= t0):
            continue
        bw_t[n_bw] = ta
        bw_i[n_bw, 0] = c
        bw_i[n_bw, 1] = j
        bw_i[n_bw, 2] = s
        bw_i[n_bw, 3] = 1 if from_log else 0
        bw_v[n_bw] = v
        n_bw += 1
    return n_bw


@leaf
def row_gradients_in_time(GI, CI, W, g, t1, bw_t, bw_i, bw_v, n_bw, bw_order, lo_e, hi_e, log_t, log_i, sp_order,
                          seg, ETA, SMU, SPB, GW, GD, shift, cb):
    """Undo the step's row arrivals into g, latest first, switching each spiking neuron's equivalent in ETA to
    the one before its spike as the arrivals pass it (a spike at an arrival's own time came first); ETA ends
    with every neuron's equivalent at the step's start."""
    d = GI[g, DIM]
    ng = GI[g, SIZE]
    zo = GI[g, ZOFF]
    sort_by_time(bw_t, bw_order, n_bw)
    n_sp = 0
    for e in range(lo_e, hi_e):
        if log_i[e, 0] == g:
            sp_order[n_sp] = e
            n_sp += 1
    for a in range(1, n_sp):  # the spikes by time
        q = sp_order[a]
        b = a - 1
        while b >= 0 and log_t[sp_order[b]] > log_t[q]:
            sp_order[b + 1] = sp_order[b]
            b -= 1
        sp_order[b + 1] = q
    next_spike = n_sp - 1
    for r in range(n_bw - 1, -1, -1):
        k = bw_order[r]
        ta = bw_t[k]
        while next_spike >= 0 and log_t[sp_order[next_spike]] > ta:
            e = sp_order[next_spike]
            for i in range(d):
                ETA[zo + i * ng + log_i[e, 1]] = seg[e, i]
            next_spike -= 1
        c = bw_i[k, 0]
        need = CI[c, DOFF] >= 0 or bw_i[k, 3] == 1
        q = row_gradient(GI, CI, W, c, bw_i[k, 1], np.float64(bw_v[k]), ta, t1, need, ETA, SMU, SPB, GW, cb)
        if CI[c, DOFF] >= 0:
            GD[CI[c, DOFF]] += q
        if bw_i[k, 3] == 1:
            shift[bw_i[k, 2]] += q
    while next_spike >= 0:
        e = sp_order[next_spike]
        for i in range(d):
            ETA[zo + i * ng + log_i[e, 1]] = seg[e, i]
        next_spike -= 1


@leaf
def readout_adjoint_modes(GI, RO, ws, dLdy, first, n, ETA, SV):
    """Add dL/dx(t_n) of the readout's sample at the end of step n to eta = V^T lambda."""
    g = RO[0]
    if RO[2] > 1:
        return
    d = GI[g, DIM]
    ng = GI[g, SIZE]
    zo = GI[g, ZOFF]
    for m in range(ng):
        if RO[2] == 0:
            value = dLdy[m] * ws[n]
        elif first[m] == n:
            value = dLdy[m]
        else:
            continue
        for k in range(d):
            ETA[zo + k * ng + m] += SV[g, RO[1], k] * value


@jit
def backward_step(GI, CI, CS, ORDER, ICS, ICL, PR, W, DS, DP, EM, dt, n_steps, min_gdot, RO, ws, dLdy, SDT, in_time,
                  in_unit, in_group, in_value, log_t, log_i, n_events, sp_x, first, SMU, SV, SVI, SED, SPB, CUR,
                  sp_first, GW, GD, PG, counts, MF):
    """Adjoint pass of one sample on the step-parallel engine: dL/dW into GW, dL/d delay into GD (laid out
    like DL), dL/dp per neuron into PG. CUR: the forward pass's cursors (copied: they are moved back)."""
    dmax = sp_x.shape[1]
    ztot = SDT.shape[0]
    G = GI.shape[0]
    in_first, src_in, biggest = input_sources(GI, in_time, in_unit, in_group, n_steps, dt)
    window = 0
    for c in range(CS.shape[0]):
        window = max(window, CS[c, CS_WINDOW])
    most = 0  # the most sources that can send row arrivals into one step: those of its window of steps
    for n in range(n_steps):
        lo = max(n - window, 0)
        most = max(most, in_first[n + 1] - in_first[lo] + sp_first[n + 1] - sp_first[lo])
    n_rows = (most + 1) * max(ICS[G] - ICS[0], 1)  # at most one per source and incoming connection
    work = (np.zeros(ztot, W.dtype), np.empty((max(n_events, 1), dmax), np.float64), np.zeros(max(n_events, 1)),
            np.full(biggest, -1, np.int64), np.full(biggest, -1, np.int64), np.empty(biggest, np.int64), in_first,
            src_in, np.empty(0, log_t.dtype), CUR.copy(), np.empty(dmax, np.float64), np.empty(dmax, np.float64),
            np.empty(dmax, np.float64), np.empty(dmax, np.float64), np.empty(dmax, np.float64),
            np.empty(n_rows, np.float64), np.empty((n_rows, 4), np.int64), np.empty(n_rows, np.float64),
            np.empty(n_rows, np.int64), np.empty(max(n_events, 1), np.int64))
    return backward_step_steps(GI, CI, CS, ORDER, ICS, ICL, PR, W, DS, DP, EM, dt, n_steps, min_gdot, RO, ws, dLdy,
                               SDT, in_time, in_value, log_t, log_i, sp_x, first, SMU, SV, SVI, SED, SPB, sp_first, GW,
                               GD, PG, counts, work, MF)


@flat_jit
def backward_step_steps(GI, CI, CS, ORDER, ICS, ICL, PR, W, DS, DP, EM, dt, n_steps, min_gdot, RO, ws, dLdy, SDT,
                        in_time, in_value, log_t, log_i, sp_x, first, SMU, SV, SVI, SED, SPB, sp_first, GW, GD, PG,
                        counts, work, MF):
    """backward_step's steps in the work arrays it allocated (compiled without numba's runtime)."""
    (ETA, seg, shift, run_lo, run_hi, spk, in_first, src_in, no_values, CUR, eta, lam, out, cb, e_src, bw_t, bw_i,
     bw_v, bw_order, sp_order) = work
    RUNS = (run_lo, run_hi, seg)  # arrays that the inlined arrival_gradients takes in groups
    BW = (bw_t, bw_i, bw_v)
    for n in range(n_steps - 1, -1, -1):
        t0 = n * dt
        t1 = (n + 1) * dt
        readout_adjoint_modes(GI, RO, ws, dLdy, first, n, ETA, SV)
        for oi in range(ORDER.shape[0] - 1, -1, -1):
            g = ORDER[oi]
            n_spk = 0
            if GI[g, SPIKING] == 1:
                n_spk = spike_adjoints(GI, PR, PG, g, n, dt, sp_first[n], sp_first[n + 1], log_t, log_i, sp_x, ETA,
                                       seg, shift, run_lo, run_hi, spk, SMU, SV, SVI, SDT, dLdy, RO, first, min_gdot,
                                       counts, eta, lam, out, MF)
            n_bw = np.int64(0)
            for ic in range(ICS[g], ICS[g + 1]):
                c = ICL[ic]
                n_lo = larger(n - CS[c, CS_WINDOW], 0)
                if GI[CI[c, PRE], IS_INPUT] == 1:
                    n_bw = arrival_gradients(GI, CI, CS, W, DS, DP, EM, c, n, t0, t1, in_first[n_lo], in_first[n + 1],
                                             in_time, src_in, in_value, np.bool_(False), CUR, SMU, SPB, ETA, RUNS,
                                             log_t, GW, GD, shift, eta, e_src, BW, n_bw)
                else:
                    n_bw = arrival_gradients(GI, CI, CS, W, DS, DP, EM, c, n, t0, t1, sp_first[n_lo], sp_first[n + 1],
                                             log_t, log_i, no_values, np.bool_(True), CUR, SMU, SPB, ETA, RUNS,
                                             log_t, GW, GD, shift, eta, e_src, BW, n_bw)
            row_gradients_in_time(GI, CI, W, g, t1, bw_t, bw_i, bw_v, n_bw, bw_order, sp_first[n], sp_first[n + 1],
                                  log_t, log_i, sp_order, seg, ETA, SMU, SPB, GW, GD, shift, cb)
            for a in range(n_spk):
                m = spk[a]
                run_lo[m] = -1
                run_hi[m] = -1
        for g in range(GI.shape[0]):  # back to t0: eta(t0) = exp(mu dt) eta(t1)
            if GI[g, IS_INPUT] == 1:
                continue
            ng = GI[g, SIZE]
            zo = GI[g, ZOFF]
            for k in range(GI[g, DIM]):
                e = SED[g, k]
                base = np.uint64(zo + k * ng)
                for m in range(np.uint64(ng)):  # unsigned: no wraparound tests, a loop that vectorises
                    ETA[base + m] *= e
    return OK
