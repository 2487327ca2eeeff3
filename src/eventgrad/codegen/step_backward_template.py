# ruff: noqa: F821
"""The step-parallel engine's backward pass (see ``step_template.py``, appended before this file).

Step by step and population by population in reverse order, the adjoint in modal coordinates eta =
V^T lambda is kept as its end-of-step equivalent. A neuron that spiked in the step gets one equivalent per
stretch between its spikes (spike_adjoints). Row arrivals are undone latest first while each spiking
neuron's equivalent is switched as they pass its spikes (row_gradients_in_time); a source's single-synapse
arrivals are undone along its weight row when the pass reaches the step it was sent in, each from its
target's equivalent kept for the step it arrived in (a ring of recent steps, with the stretch that holds
it where the target spiked there). Every arrival's time shift is dL/d(its delay) and joins the adjoint jump
of the spike that sent it.
"""
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
def arrival_gradients(GI, CI, CS, DS, c, n, t0, t1, lo, hi, src_t, src_i, src_v, from_log, BW, n_bw):
    """List the row arrivals (one delay for connection c) of step n from source entries lo..hi-1, as
    deliver_arrivals found them, in bw_* ([connection, unit, source, from the log]), to be undone in time order
    (row_gradients_in_time). Returns n_bw."""
    bw_t, bw_i, bw_v = BW
    pre = CI[c, PRE]
    delay = DS[CS[c, CS_OFF]]
    for s in range(lo, hi):
        ta = row_arrival(src_t, src_i, s, pre, delay, n, t0, t1)
        if ta < 0.0:
            continue
        bw_t[n_bw] = ta
        bw_i[n_bw, 0] = c
        bw_i[n_bw, 1] = src_i[s, 1]
        bw_i[n_bw, 2] = s
        bw_i[n_bw, 3] = 1 if from_log else 0
        bw_v[n_bw] = np.float64(src_v[s]) if src_v.shape[0] > 0 else 1.0
        n_bw += 1
    return n_bw


@leaf
def record_history(GI, g, slot, ETA, run_lo, run_hi, EH, RUN, dm):
    """Keep g's adjoint equivalents of this step (as the step's arrivals read them: after its spikes' jumps)
    and which neurons spiked in it in ring slot ``slot``, for the single-synapse arrivals of the sources sent
    earlier (source_gradients): per target, its dm equivalents and a flag (1 if it spiked in the step) side
    by side in EH, in ETA's type (a copy, nothing rounded), and its log entries of the step in RUN."""
    d = GI[g, DIM]
    ng = GI[g, SIZE]
    zo = GI[g, ZOFF]
    uw = np.uint64(dm + 1)
    ut = np.uint64(slot * ETA.shape[0] + zo)
    ur = np.uint64(RUN.shape[0] // 2)
    uzo = np.uint64(zo)
    ung = np.uint64(ng)
    for m in range(ung):
        for k in range(d):
            EH[(ut + m) * uw + np.uint64(k)] = ETA[uzo + np.uint64(k) * ung + m]
        EH[(ut + m) * uw + np.uint64(dm)] = 1.0 if run_lo[m] >= 0 else 0.0
        RUN[ut + m] = run_lo[m]
        RUN[ur + ut + m] = run_hi[m]


@leaf
def source_gradients(GI, CI, CS, W, DS, ER, c, ts, j, v, floor, dt, n_steps, HIST, log_t, seg, GW, GD, e_src,
                     eta, need_shift):
    """Undo the single-synapse arrivals of source (ts, unit j, value v) through connection c, along its weight
    row, once every step they arrive in has been passed: each one's weight gradient v exp(mu (t1 - t_a))
    (V^-1 beta) . eta, eta its target's equivalent in that step from the ring EH (or, where the target spiked
    in that step, the one of the stretch holding the arrival), and its time shift (dL/d its delay; their sum
    for the spike that sent it is returned where need_shift). The exponentials factor as deposit_row's do,
    and an arrival before step ``floor`` comes at its start, as there."""
    EH, RUN, SED, SMU, SPB, R, ROWS = HIST
    dm = SMU.shape[1]
    ztot = RUN.shape[0] // (2 * R)
    post = CI[c, POST]
    d = GI[post, DIM]
    ng = GI[post, SIZE]
    zo = GI[post, ZOFF]
    row = CS[c, CS_OFF] + j * ng
    wrow = CI[c, WOFF] + j * ng
    goff = CI[c, DOFF] + j * ng
    base = step_of(ts, dt, n_steps)
    sb = base % R
    for k in range(d):
        e_src[k] = v * math.exp(SMU[post, k] * ((base + 1) * dt - ts)) * SPB[c, k]
    shift = 0.0
    if d == 2:  # two modes: the row's factors first (a loop that vectorises), then the targets' equivalents
        AI, AK0, AK1, AT, AF = ROWS
        single_arrivals_2(DS, ER, row, ts, base, floor, dt, n_steps, SED[post, 0], SED[post, 1], ng, ROWS)
        c0 = e_src[0]
        c1 = e_src[1]
        mu0 = SMU[post, 0]
        mu1 = SMU[post, 1]
        b0 = v * SPB[c, 0]
        b1 = v * SPB[c, 1]
        urow = np.uint64(row)
        uw = np.uint64(wrow)
        ug = np.uint64(goff)
        udm = np.uint64(dm)
        uzo = np.uint64(zo)
        ung = np.uint64(ng)
        uzt = np.uint64(ztot)
        ue = udm + np.uint64(1)
        for m in range(ung):  # AK0, AK1 := each arrival's two terms of the weight gradient
            if AF[m]:  # the exact way (arrival_step)
                nm, ta, slot_, i_, early = arrival_step(ts + DS[urow + m], floor, base, sb, R, dt, n_steps)
                if nm >= n_steps:
                    AK0[m] = 0.0
                    AK1[m] = 0.0
                    continue
                a0 = b0 * math.exp(mu0 * ((nm + 1) * dt - ta))
                a1 = b1 * math.exp(mu1 * ((nm + 1) * dt - ta))
            else:
                ta = AT[m]
                slot_ = sb + AI[m]
                if slot_ >= R:
                    slot_ -= R
                a0 = c0 * AK0[m]
                a1 = c1 * AK1[m]
            at = np.uint64(slot_) * uzt + uzo + m
            h0 = np.float64(EH[at * ue])
            h1 = np.float64(EH[at * ue + np.uint64(1)])
            if EH[at * ue + udm] != 0.0:  # the target spiked in that step: the stretch holding the arrival
                for r in range(RUN[at], RUN[uzt * np.uint64(R) + at]):
                    if log_t[r] > ta:  # a spike at the arrival's own time came before it, as in the walk
                        h0 = seg[r, 0]
                        h1 = seg[r, 1]
                        break
            AK0[m] = a0 * h0
            AK1[m] = a1 * h1
        for m in range(ung):  # along the rows: a loop that vectorises
            a0 = AK0[m]
            a1 = AK1[m]
            GW[uw + m] += a0 + a1
            q = -(mu0 * a0 + mu1 * a1) * W[uw + m]
            GD[ug + m] += q
            AT[m] = q
        if need_shift:
            for m in range(ung):
                shift += AT[m]
        return shift
    for m in range(ng):
        nm, ta, slot, jk = single_arrival(DS, row + m, ts, floor, base, sb, R, dt, n_steps)
        if nm >= n_steps:
            continue
        exact = jk < 0.0
        at = slot * ztot + zo + m
        for k in range(d):
            eta[k] = EH[at * (dm + 1) + k]
        # where the target spiked in that step: the equivalent of the stretch holding the arrival
        for r in range(RUN[at], RUN[ztot * R + at]):
            if log_t[r] > ta:  # a spike at the arrival's own time came before it, as in the walk
                for k in range(d):
                    eta[k] = seg[r, k]
                break
        gw = 0.0
        q = 0.0
        for k in range(d):
            if exact:
                a = v * math.exp(SMU[post, k] * ((nm + 1) * dt - ta)) * SPB[c, k]
            else:
                a = e_src[k] * (1.0 if jk == 0.0 else SED[post, k]) * ER[k * DS.shape[0] + row + m]
            a *= eta[k]
            gw += a
            q -= SMU[post, k] * a
        GW[wrow + m] += gw
        q *= W[wrow + m]
        GD[goff + m] += q
        shift += q
    return shift


@flat_jit
def sources_gradients(GI, CI, CS, W, DS, ER, c, lo, hi, src_t, src_i, src_v, from_log, n, dt, n_steps, HIST, log_t,
                      seg, GW, GD, shift, e_src, eta):
    """source_gradients for the source entries lo..hi-1 of connection c's source group; a spike's time shifts
    join its adjoint jump (shift). Not inlined: in a function of its own the row loop keeps its constants in
    registers."""
    pre = CI[c, PRE]
    for s in range(lo, hi):
        if src_i[s, 0] != pre:
            continue
        v = np.float64(src_v[s]) if src_v.shape[0] > 0 else 1.0
        floor = n + CS[c, CS_FIRST] if from_log else 0  # the sources are step n's (see deposit_sources)
        q = source_gradients(GI, CI, CS, W, DS, ER, c, np.float64(src_t[s]), src_i[s, 1], v, floor, dt, n_steps,
                             HIST, log_t, seg, GW, GD, e_src, eta, from_log)
        if from_log:
            shift[s] += q


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
        ta = bw_t[r]  # sorted in place
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
def backward_step(GI, CI, CS, ORDER, ICS, ICL, PR, W, DS, ER, dt, n_steps, min_gdot, RO, ws, dLdy, SDT, in_time,
                  in_unit, in_group, in_value, log_t, log_i, n_events, sp_x, first, SMU, SV, SVI, SED, SPB, sp_first,
                  GW, GD, PG, counts, MF):
    """Adjoint pass of one sample on the step-parallel engine: dL/dW into GW, dL/d delay into GD (laid out
    like DL), dL/dp per neuron into PG."""
    dmax = sp_x.shape[1]
    ztot = SDT.shape[0]
    G = GI.shape[0]
    in_first, src_in, biggest = input_sources(GI, in_time, in_unit, in_group, n_steps, dt)
    window = 0
    R = 1  # the ring of single-synapse arrivals' steps, as forward_step's
    for c in range(CS.shape[0]):
        window = max(window, CS[c, CS_WINDOW])
        if CS[c, CS_PER] == 1:
            R = max(R, min(CS[c, CS_WINDOW], n_steps) + 1)
    most = 0  # the most sources that can send row arrivals into one step: those of its window of steps
    for n in range(n_steps):
        lo = max(n - window, 0)
        most = max(most, in_first[n + 1] - in_first[lo] + sp_first[n + 1] - sp_first[lo])
    n_rows = (most + 1) * max(ICS[G] - ICS[0], 1)  # at most one per source and incoming connection
    # ROWS: one source's row of single-synapse arrivals at a time (single_arrivals_2)
    ROWS = (np.empty(biggest, np.int64), np.empty(biggest, np.float64), np.empty(biggest, np.float64),
            np.empty(biggest, np.float64), np.empty(biggest, np.bool_))
    HIST = (np.zeros(R * ztot * (dmax + 1), W.dtype), np.full(2 * R * ztot, -1, np.int64), SED, SMU, SPB, R, ROWS)
    work = (np.zeros(ztot, W.dtype), np.empty((max(n_events, 1), dmax), np.float64), np.zeros(max(n_events, 1)),
            np.full(biggest, -1, np.int64), np.full(biggest, -1, np.int64), np.empty(biggest, np.int64), in_first,
            src_in, np.empty(0, log_t.dtype), np.empty(dmax, np.float64), np.empty(dmax, np.float64),
            np.empty(dmax, np.float64), np.empty(dmax, np.float64), np.empty(dmax, np.float64),
            np.empty(n_rows, np.float64), np.empty((n_rows, 4), np.int64), np.empty(n_rows, np.float64),
            np.empty(n_rows, np.int64), np.empty(max(n_events, 1), np.int64))
    return backward_step_steps(GI, CI, CS, ORDER, ICS, ICL, PR, W, DS, ER, dt, n_steps, min_gdot, RO, ws, dLdy,
                               SDT, in_time, in_value, log_t, log_i, sp_x, first, SMU, SV, SVI, SED, SPB, sp_first, GW,
                               GD, PG, counts, work, HIST, MF)


@flat_jit
def backward_step_steps(GI, CI, CS, ORDER, ICS, ICL, PR, W, DS, ER, dt, n_steps, min_gdot, RO, ws, dLdy, SDT,
                        in_time, in_value, log_t, log_i, sp_x, first, SMU, SV, SVI, SED, SPB, sp_first, GW, GD, PG,
                        counts, work, HIST, MF):
    """backward_step's steps in the work arrays it allocated (compiled without numba's runtime). A source's
    single-synapse arrivals are undone at once when the pass reaches the step it was sent in, from the
    equivalents each target population keeps for the ring's steps (record_history): its spike's adjoint
    jump then has their time shifts."""
    (ETA, seg, shift, run_lo, run_hi, spk, in_first, src_in, no_values, eta, lam, out, cb, e_src, bw_t, bw_i,
     bw_v, bw_order, sp_order) = work
    BW = (bw_t, bw_i, bw_v)
    R = HIST[5]
    C = CI.shape[0]
    for n in range(n_steps - 1, -1, -1):
        t0 = n * dt
        t1 = (n + 1) * dt
        readout_adjoint_modes(GI, RO, ws, dLdy, first, n, ETA, SV)
        for oi in range(ORDER.shape[0] - 1, -1, -1):
            g = ORDER[oi]
            n_spk = 0
            if GI[g, SPIKING] == 1:
                for c in range(C):  # g's spikes of this step: their single-synapse arrivals, all passed now
                    if CI[c, PRE] == g and CS[c, CS_PER] == 1:
                        sources_gradients(GI, CI, CS, W, DS, ER, c, sp_first[n], sp_first[n + 1], log_t, log_i,
                                          no_values, np.bool_(True), n, dt, n_steps, HIST, log_t, seg, GW, GD,
                                          shift, e_src, eta)
                n_spk = spike_adjoints(GI, PR, PG, g, n, dt, sp_first[n], sp_first[n + 1], log_t, log_i, sp_x, ETA,
                                       seg, shift, run_lo, run_hi, spk, SMU, SV, SVI, SDT, dLdy, RO, first, min_gdot,
                                       counts, eta, lam, out, MF)
            n_bw = np.int64(0)
            for ic in range(ICS[g], ICS[g + 1]):
                c = ICL[ic]
                if CS[c, CS_PER] == 1:
                    continue
                n_lo = larger(n - CS[c, CS_WINDOW], 0)
                if GI[CI[c, PRE], IS_INPUT] == 1:
                    n_bw = arrival_gradients(GI, CI, CS, DS, c, n, t0, t1, in_first[n_lo], in_first[n + 1], in_time,
                                             src_in, in_value, np.bool_(False), BW, n_bw)
                else:
                    n_bw = arrival_gradients(GI, CI, CS, DS, c, n, t0, t1, sp_first[n_lo], sp_first[n + 1], log_t,
                                             log_i, no_values, np.bool_(True), BW, n_bw)
            for ic in range(ICS[g], ICS[g + 1]):  # g's equivalents of this step, for the sources sent earlier
                if CS[ICL[ic], CS_PER] == 1:
                    record_history(GI, g, n % R, ETA, run_lo, run_hi, HIST[0], HIST[1], SMU.shape[1])
                    break
            row_gradients_in_time(GI, CI, W, g, t1, bw_t, bw_i, bw_v, n_bw, bw_order, sp_first[n], sp_first[n + 1],
                                  log_t, log_i, sp_order, seg, ETA, SMU, SPB, GW, GD, shift, cb)
            for a in range(n_spk):
                m = spk[a]
                run_lo[m] = -1
                run_hi[m] = -1
        for c in range(C):  # the inputs of this step: their single-synapse arrivals, all passed now
            if GI[CI[c, PRE], IS_INPUT] == 1 and CS[c, CS_PER] == 1:
                sources_gradients(GI, CI, CS, W, DS, ER, c, in_first[n], in_first[n + 1], in_time, src_in, in_value,
                                  np.bool_(False), n, dt, n_steps, HIST, log_t, seg, GW, GD, shift, e_src, eta)
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
