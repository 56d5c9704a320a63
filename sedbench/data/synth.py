"""``synth``: 16 procedurally synthesized sound classes mirroring TUT-SED Synthetic 2016.

The classes and their average annotated durations follow Cakir et al. (2017), Table III.
Each class is a family of sources: an *instance* draws its own timbre, pitch range,
level and rhythm from a seed (as a recorded sample is one dog, one alarm), and a
*segment* renders that source for 3-15 s starting at a random point of its activity
pattern. The families were designed to make the paper's questions matter:

* impulsive (glass smash, gun shot) vs. minute-long stationary (rain, bus);
* harmonic with pitch glides, deliberately confusable (cat meowing vs. baby crying,
  overlapping f0 ranges and formants);
* rhythmic, where temporal context identifies the class (footsteps, horse walk, dog barking);
* noise-like textures overlapping in frequency (rain, crowd applause, crowd cheering);
* engines sharing low harmonics (bus, motorcycle, mixer); tonal (alarms, bird singing);
  low rumble (thunder).

Pitch varies per instance (frequency invariance helps) and timing per segment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sedbench.data.dataset import SPLITS

Rng = np.random.Generator


# --------------------------------------------------------------------------- building blocks
def _env_exp(n: int, sr: int, tau: float, attack: float = 0.002) -> np.ndarray:
    t = np.arange(n) / sr
    return (np.minimum(1.0, t / max(attack, 1e-4)) * np.exp(-t / tau)).astype(np.float32)


def _env_ar(n: int, sr: int, attack: float, release: float) -> np.ndarray:
    t = np.arange(n) / sr
    dur = n / sr
    return np.clip(np.minimum(t / max(attack, 1e-4), (dur - t) / max(release, 1e-4)), 0.0, 1.0).astype(np.float32)


def _shape(x: np.ndarray, sr: int, lo: float, hi: float, tilt: float = 0.0,
           peaks: tuple[tuple[float, float], ...] = ()) -> np.ndarray:
    """Filter ``x`` in the frequency domain: smooth band-pass [lo, hi], 1/f^tilt, resonant peaks."""
    from scipy import fft

    n = fft.next_fast_len(len(x), real=True)  # segment lengths are arbitrary; keep the FFT fast
    spec = fft.rfft(x, n=n)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    g = 1.0 / (1.0 + (lo / np.maximum(f, 1.0)) ** 4) / (1.0 + (f / hi) ** 4)
    if tilt:
        g = g * (np.maximum(f, 20.0) / 1000.0) ** (-tilt / 2.0)
    for fc, bw in peaks:
        g = g * (1.0 + 8.0 * np.exp(-0.5 * ((f - fc) / bw) ** 2))
    y = fft.irfft(spec * g, n=n)[: len(x)].astype(np.float32)
    return y / (np.std(y) + 1e-9)


def _noise(rng: Rng, n: int, sr: int, lo: float, hi: float, tilt: float = 0.0,
           peaks: tuple[tuple[float, float], ...] = ()) -> np.ndarray:
    return _shape(rng.standard_normal(n).astype(np.float32), sr, lo, min(hi, 0.45 * sr), tilt, peaks)


def _phase(f0: np.ndarray, sr: int, rng: Rng) -> np.ndarray:
    return (2 * np.pi * np.cumsum(f0) / sr + rng.uniform(0, 2 * np.pi)).astype(np.float64)


def _saw(f0: np.ndarray, sr: int, rng: Rng) -> np.ndarray:
    ph = _phase(f0, sr, rng) / (2 * np.pi)
    return (2.0 * (ph - np.floor(ph)) - 1.0).astype(np.float32)


def _voice(f0: np.ndarray, sr: int, rng: Rng, formants: np.ndarray, n_harm: int = 16,
           rolloff: float = 0.7) -> np.ndarray:
    """Additive harmonic voice; each harmonic weighted by a formant envelope at its frequency.

    ``formants``: (n_formants, 2) centre and bandwidth in Hz (static over the event).
    """
    ph = _phase(f0, sr, rng)
    y = np.zeros(len(f0), dtype=np.float32)
    nyq = 0.45 * sr
    for k in range(1, n_harm + 1):
        fk = k * f0
        w = np.full(len(f0), 0.05, dtype=np.float64)
        for fc, bw in formants:
            w += np.exp(-0.5 * ((fk - fc) / bw) ** 2)
        w *= (fk < nyq) * rolloff ** (k - 1)
        y += (w * np.sin(k * ph)).astype(np.float32)
    return y


def _add(out: np.ndarray, start: int, y: np.ndarray, gain: float = 1.0) -> None:
    if start >= len(out) or start + len(y) <= 0:
        return
    a, b = max(0, start), min(len(out), start + len(y))
    out[a:b] += gain * y[a - start:b - start]


def _bouts(rng: Rng, seconds: float, on: tuple[float, float], off: tuple[float, float]) -> list[tuple[float, float]]:
    """Alternating active bouts and silences covering ``seconds``, starting at a random phase."""
    out, t = [], -rng.uniform(0, on[1] + off[1])
    while t < seconds:
        d = rng.uniform(*on)
        if t + d > 0:
            out.append((max(t, 0.0), min(t + d, seconds) - max(t, 0.0)))
        t += d + rng.uniform(*off)
    return out


def _slow(rng: Rng, n: int, sr: int, depth: float, rate: float = 0.3) -> np.ndarray:
    """A slow random modulation in [1-depth, 1+depth] (sum of a few sines)."""
    step = max(1, sr // 200)  # evaluate at 200 Hz, interpolate: it is slow by construction
    tc = np.arange(0, n + step, step) / sr
    m = np.zeros(len(tc))
    for _ in range(3):
        m += np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * rate * tc + rng.uniform(0, 2 * np.pi))
    return (1.0 + depth * np.interp(np.arange(n) / sr, tc, m) / 3.0).astype(np.float32)


# --------------------------------------------------------------------------- the 16 classes
# Each class: draw(rng) -> instance parameters; render(p, rng, n, sr) -> mono audio of n samples.

def _glass_draw(r: Rng) -> dict:
    return {"lo": r.uniform(2000, 5000), "shards": int(r.integers(12, 36)), "tau": r.uniform(0.15, 0.45),
            "every": (r.uniform(2.0, 3.5), r.uniform(4.0, 7.0))}


def _glass(p: dict, r: Rng, n: int, sr: int) -> np.ndarray:
    y = np.zeros(n, np.float32)
    t = r.uniform(0, p["every"][1])
    while t < n / sr:
        m = int(1.6 * sr)
        s = np.zeros(m, np.float32)
        s += 2.0 * _noise(r, m, sr, 1500, 16000) * _env_exp(m, sr, 0.006)
        tt = np.arange(m) / sr
        hi = min(14000.0, 0.45 * sr)
        lo = min(p["lo"], hi / 2)
        for _ in range(p["shards"]):
            d = min(r.exponential(0.08), 0.5)
            f = np.exp(r.uniform(np.log(lo), np.log(hi)))
            e = np.where(tt >= d, np.exp(-(tt - d) / (p["tau"] * r.uniform(0.4, 1.6))), 0.0)
            s += (r.uniform(0.2, 1.0) * e * np.sin(2 * np.pi * f * tt + r.uniform(0, 6.3))).astype(np.float32)
        _add(y, int(t * sr), s, r.uniform(0.5, 1.0))
        t += r.uniform(*p["every"])
    return y


def _gun_draw(r: Rng) -> dict:
    return {"boom": r.uniform(60, 200), "tail": r.uniform(0.45, 0.9), "bright": r.uniform(2500, 8000),
            "burst": int(r.integers(1, 4))}


def _gun(p: dict, r: Rng, n: int, sr: int) -> np.ndarray:
    y = np.zeros(n, np.float32)
    t = r.uniform(0, 4.0)
    while t < n / sr:
        for k in range(int(r.integers(1, p["burst"] + 1))):
            m = int(3.0 * sr)
            s = (3.0 * _noise(r, m, sr, 300, p["bright"]) * _env_exp(m, sr, 0.004)
                 + 2.0 * _noise(r, m, sr, 30, 2 * p["boom"]) * _env_exp(m, sr, 0.07)
                 + 1.0 * _noise(r, m, sr, 150, 3000, tilt=1.0) * _env_exp(m, sr, p["tail"], 0.01))
            _add(y, int((t + k * r.uniform(0.12, 0.35)) * sr), s, r.uniform(0.6, 1.0))
        t += r.uniform(2.0, 6.0)
    return y


def _cat_draw(r: Rng) -> dict:
    return {"f0": r.uniform(380, 700), "glide": r.uniform(1.15, 1.7),
            "formants": np.array([[r.uniform(700, 1100), 250], [r.uniform(1600, 2600), 400]])}


def _cat(p: dict, r: Rng, n: int, sr: int) -> np.ndarray:
    y = np.zeros(n, np.float32)
    for start, dur in _bouts(r, n / sr, (0.7, 2.2), (0.3, 2.5)):
        m = int(dur * sr)
        u = np.linspace(0, 1, m)
        peak = r.uniform(0.25, 0.6)
        contour = np.where(u < peak, u / peak, (1 - u) / (1 - peak))  # rise then fall: "me-ow"
        f0 = p["f0"] * r.uniform(0.9, 1.1) * p["glide"] ** contour * (1 + 0.01 * np.sin(2 * np.pi * 6 * u * m / sr))
        v = _voice(f0, sr, r, p["formants"] * r.uniform(0.92, 1.08), n_harm=14, rolloff=0.75)
        _add(y, int(start * sr), v * _env_ar(m, sr, 0.06, 0.2))
    return y


def _baby_draw(r: Rng) -> dict:
    return {"f0": r.uniform(330, 560), "rough": r.uniform(0.0, 0.04),
            "formants": np.array([[r.uniform(800, 1300), 300], [r.uniform(1900, 3200), 450]])}


def _baby(p: dict, r: Rng, n: int, sr: int) -> np.ndarray:
    y = np.zeros(n, np.float32)
    for b0, blen in _bouts(r, n / sr, (6.0, 16.0), (1.0, 3.0)):
        t = b0
        while t < b0 + blen:
            m = int(r.uniform(0.6, 1.8) * sr)
            u = np.linspace(0, 1, m)
            arch = 1 + r.uniform(0.1, 0.35) * np.sin(np.pi * u) - r.uniform(0, 0.25) * u ** 3
            vib = 1 + 0.02 * np.sin(2 * np.pi * r.uniform(5, 8) * u * m / sr)
            jit = 1 + p["rough"] * r.standard_normal(m).cumsum() / np.sqrt(m)
            f0 = p["f0"] * r.uniform(0.9, 1.1) * arch * vib * jit
            v = _voice(f0, sr, r, p["formants"], n_harm=14, rolloff=0.8)
            v += 0.15 * _noise(r, m, sr, 1000, 6000)
            _add(y, int(t * sr), v * _env_ar(m, sr, 0.05, 0.15))
            t += m / sr + r.uniform(0.1, 0.4)
    return y


def _dog_draw(r: Rng) -> dict:
    return {"f0": r.uniform(250, 650), "noise": r.uniform(0.2, 0.7), "len": r.uniform(0.08, 0.22),
            "every": r.uniform(0.2, 0.42),
            "formants": np.array([[r.uniform(500, 1000), 250], [r.uniform(1200, 2200), 350]])}


def _dog(p: dict, r: Rng, n: int, sr: int) -> np.ndarray:
    y = np.zeros(n, np.float32)
    for b0, blen in _bouts(r, n / sr, (3.0, 12.0), (1.5, 4.0)):
        t = b0
        while t < b0 + blen:
            m = int(p["len"] * r.uniform(0.7, 1.4) * sr)
            u = np.linspace(0, 1, m)
            f0 = p["f0"] * r.uniform(0.9, 1.15) * (1.25 - 0.45 * u)
            v = _voice(f0, sr, r, p["formants"], n_harm=12, rolloff=0.8)
            breath = _noise(r, m, sr, 300, 4000, peaks=tuple(map(tuple, p["formants"])))
            v = v / (np.std(v) + 1e-9) + p["noise"] * breath
            _add(y, int(t * sr), v * _env_ar(m, sr, 0.008, 0.6 * m / sr), r.uniform(0.6, 1.0))
            t += p["every"] * r.uniform(0.75, 1.3)
    return y


def _thunder_draw(r: Rng) -> dict:
    return {"cut": r.uniform(80, 300), "crack": r.random() < 0.6}


def _thunder(p: dict, r: Rng, n: int, sr: int) -> np.ndarray:
    y = np.zeros(n, np.float32)
    for start, dur in _bouts(r, n / sr, (5.0, 14.0), (2.0, 6.0)):
        m = int(dur * sr)
        env = _env_ar(m, sr, r.uniform(0.05, 0.8), 0.5) * np.exp(-np.arange(m) / sr / r.uniform(3.0, 6.0))
        s = _noise(r, m, sr, 20, 3 * p["cut"], tilt=2.0) * env * _slow(r, m, sr, 0.4, rate=3.0)
        if p["crack"]:
            s += 0.8 * _noise(r, m, sr, 800, 9000) * _env_exp(m, sr, r.uniform(0.05, 0.2), 0.01)
        _add(y, int(start * sr), s.astype(np.float32))
    return y


def _bird_draw(r: Rng) -> dict:
    return {"f": r.uniform(2000, 5000), "syl": r.uniform(0.03, 0.12), "every": r.uniform(0.06, 0.2),
            "sweep": r.uniform(-2000, 2000), "trill": r.uniform(20, 80)}


def _bird(p: dict, r: Rng, n: int, sr: int) -> np.ndarray:
    y = np.zeros(n, np.float32)
    for b0, blen in _bouts(r, n / sr, (3.0, 12.0), (0.3, 2.5)):
        t = b0
        while t < b0 + blen:
            m = int(p["syl"] * r.uniform(0.7, 1.4) * sr)
            u = np.linspace(0, 1, m)
            f = (p["f"] * r.uniform(0.85, 1.2) + p["sweep"] * r.uniform(0.5, 1.5) * (u - 0.5)
                 + r.uniform(100, 500) * np.sin(2 * np.pi * p["trill"] * u * m / sr))
            f = np.clip(f, 500, 0.4 * sr)
            ph = _phase(f, sr, r)
            s = (np.sin(ph) + 0.2 * np.sin(2 * ph)).astype(np.float32) * np.hanning(m).astype(np.float32)
            _add(y, int(t * sr), s, r.uniform(0.5, 1.0))
            t += p["every"] * r.uniform(0.8, 1.25) + m / sr
    return y


def _horse_draw(r: Rng) -> dict:
    return {"f": r.uniform(400, 1800), "period": r.uniform(0.5, 1.0), "tau": r.uniform(0.015, 0.045)}


def _hits(r: Rng, n: int, sr: int, times: list[float], m_sec: float,
          make: Callable[[int], np.ndarray]) -> np.ndarray:
    y = np.zeros(n, np.float32)
    m = int(m_sec * sr)
    for t in times:
        _add(y, int(t * sr), make(m), r.uniform(0.5, 1.0))
    return y


def _horse(p: dict, r: Rng, n: int, sr: int) -> np.ndarray:
    times = []
    for b0, blen in _bouts(r, n / sr, (8.0, 24.0), (1.0, 3.0)):
        t = b0
        while t < b0 + blen:
            times += [t + k * p["period"] / 4 + r.normal(0, 0.012) for k in range(4)]
            t += p["period"] * r.uniform(0.95, 1.05)

    def clop(m: int) -> np.ndarray:
        f = p["f"] * r.uniform(0.8, 1.25)
        return _noise(r, m, sr, 100, 6000, peaks=((f, f / 8), (2.3 * f, f / 6))) * _env_exp(m, sr, p["tau"], 0.001)

    return _hits(r, n, sr, times, 0.25, clop)


def _steps_draw(r: Rng) -> dict:
    return {"lo": r.uniform(150, 500), "hi": r.uniform(2000, 6000), "rate": r.uniform(1.9, 2.6),
            "scuff": r.uniform(0.08, 0.2)}


def _steps(p: dict, r: Rng, n: int, sr: int) -> np.ndarray:
    times = []
    for b0, blen in _bouts(r, n / sr, (6.0, 16.0), (1.0, 3.0)):
        t = b0
        while t < b0 + blen:
            times.append(t)
            t += r.uniform(0.93, 1.07) / p["rate"]

    def step(m: int) -> np.ndarray:
        heel = _noise(r, m, sr, p["lo"], p["hi"]) * _env_exp(m, sr, 0.03, 0.001)
        k = int(p["scuff"] * sr)
        sc = np.zeros(m, np.float32)
        sc[int(0.03 * sr):int(0.03 * sr) + k] = np.hanning(k)
        return heel + 0.5 * _noise(r, m, sr, 2 * p["lo"], p["hi"], tilt=0.5) * sc

    return _hits(r, n, sr, times, 0.3, step)


def _moto_draw(r: Rng) -> dict:
    return {"f0": r.uniform(25, 45), "rev": r.uniform(2.0, 3.5), "cut": r.uniform(800, 3000),
            "exhaust": r.uniform(250, 700)}


def _moto(p: dict, r: Rng, n: int, sr: int) -> np.ndarray:
    y = np.zeros(n, np.float32)
    for start, dur in _bouts(r, n / sr, (10.0, 30.0), (0.5, 2.0)):
        m = int(dur * sr)
        rev = np.clip(_slow(r, m, sr, 1.0, rate=0.4), 0, 2) / 2
        f0 = p["f0"] * (1 + (p["rev"] - 1) * rev)
        src = _saw(f0, sr, r) + 0.3 * r.standard_normal(m).astype(np.float32)
        s = _shape(src, sr, 30, p["cut"], peaks=((p["exhaust"], p["exhaust"] / 3),))
        passby = np.sin(np.pi * np.linspace(0, 1, m)) ** 0.6
        _add(y, int(start * sr), (s * passby).astype(np.float32))
    return y


def _bus_draw(r: Rng) -> dict:
    return {"f0": r.uniform(18, 40), "cut": r.uniform(300, 900), "road": r.uniform(0.3, 1.0)}


def _bus(p: dict, r: Rng, n: int, sr: int) -> np.ndarray:
    f0 = p["f0"] * _slow(r, n, sr, 0.15, rate=0.2)
    s = _shape(_saw(f0, sr, r), sr, 20, p["cut"]) + p["road"] * _noise(r, n, sr, 30, 2500, tilt=1.5)
    return (s * _slow(r, n, sr, 0.3, rate=0.2)).astype(np.float32)


def _mixer_draw(r: Rng) -> dict:
    return {"f0": r.uniform(120, 330), "band": r.uniform(1500, 6000), "res": r.uniform(600, 2500)}


def _mixer(p: dict, r: Rng, n: int, sr: int) -> np.ndarray:
    y = np.zeros(n, np.float32)
    for start, dur in _bouts(r, n / sr, (10.0, 30.0), (0.8, 2.5)):
        m = int(dur * sr)
        speed = r.choice([1.0, 1.25, 1.5])
        spin = np.minimum(1.0, np.arange(m) / sr / r.uniform(0.2, 0.4))
        f0 = p["f0"] * speed * (0.5 + 0.5 * spin)
        s = _shape(_saw(f0, sr, r), sr, 80, 8000, peaks=((p["res"], p["res"] / 5),))
        s += 0.6 * _noise(r, m, sr, 800, p["band"]) * (1 + 0.5 * np.sin(_phase(f0, sr, r))).astype(np.float32)
        _add(y, int(start * sr), s * _env_ar(m, sr, 0.1, 0.3))
    return y


def _applause_draw(r: Rng) -> dict:
    return {"rate": r.uniform(15, 80), "fc": r.uniform(800, 2500)}


def _applause(p: dict, r: Rng, n: int, sr: int) -> np.ndarray:
    y = np.zeros(n, np.float32)
    for start, dur in _bouts(r, n / sr, (8.0, 24.0), (1.0, 3.0)):
        m = int(dur * sr)
        imp = np.zeros(m, np.float32)
        k = r.poisson(p["rate"] * dur)
        imp[r.integers(0, m, k)] = r.uniform(0.3, 1.0, k)
        n_clap = int(0.012 * sr)
        clap = (r.standard_normal(n_clap) * np.exp(-np.arange(n_clap) / (0.003 * sr))).astype(np.float32)
        s = np.convolve(imp, clap)[:m]
        s = _shape(s, sr, p["fc"] / 3, p["fc"] * 3, peaks=((p["fc"], p["fc"] / 3),))
        _add(y, int(start * sr), s * _env_ar(m, sr, r.uniform(0.3, 1.0), r.uniform(0.5, 2.0)))
    return y


def _cheer_draw(r: Rng) -> dict:
    return {"voices": int(r.integers(8, 20)), "f0": r.uniform(180, 350), "roar": r.uniform(0.3, 1.0),
            "formant": r.uniform(600, 1000)}


def _cheer(p: dict, r: Rng, n: int, sr: int) -> np.ndarray:
    y = np.zeros(n, np.float32)
    for start, dur in _bouts(r, n / sr, (12.0, 30.0), (0.8, 2.5)):
        m = int(dur * sr)
        s = np.zeros(m, np.float32)
        for _ in range(p["voices"]):
            glide = 1 + r.uniform(-0.2, 0.4) * np.sin(np.pi * np.linspace(0, 1, m) * r.uniform(0.5, 3))
            f0 = p["f0"] * r.uniform(0.7, 1.6) * glide
            s += _saw(f0, sr, r) * _slow(r, m, sr, 0.9, rate=1.0)
        s = _shape(s, sr, 150, 4000, peaks=((p["formant"], 200), (2.2 * p["formant"], 300)))
        s += p["roar"] * _noise(r, m, sr, 300, 4000)
        _add(y, int(start * sr), s * _env_ar(m, sr, r.uniform(0.3, 1.0), r.uniform(0.5, 2.0)))
    return y


def _alarm_draw(r: Rng) -> dict:
    return {"kind": str(r.choice(["beep", "siren", "two-tone"])), "f": r.uniform(900, 3200),
            "on": r.uniform(0.1, 0.5), "off": r.uniform(0.08, 0.4), "rate": r.uniform(0.3, 2.0),
            "ratio": r.uniform(1.2, 1.5), "odd": r.uniform(0.0, 0.5)}


def _alarm(p: dict, r: Rng, n: int, sr: int) -> np.ndarray:
    y = np.zeros(n, np.float32)
    for start, dur in _bouts(r, n / sr, (12.0, 30.0), (0.8, 2.5)):
        m = int(dur * sr)
        t = np.arange(m) / sr
        if p["kind"] == "siren":
            f, gate = p["f"] * (1 + 0.3 * (1 + np.sin(2 * np.pi * p["rate"] * t))), 1.0
        elif p["kind"] == "two-tone":
            f, gate = p["f"] * np.where((t // (p["on"] + 0.3)) % 2 == 0, 1.0, p["ratio"]), 1.0
        else:
            f, gate = np.full(m, p["f"]), ((t % (p["on"] + p["off"])) < p["on"]).astype(np.float32)
        f = np.minimum(f, 0.4 * sr)
        ph = _phase(f, sr, r)
        nyq = 0.45 * sr  # odd overtones (square-ish timbre) only where they do not alias
        s = np.sin(ph) + p["odd"] * (np.sin(3 * ph) / 3 * (3 * f < nyq) + np.sin(5 * ph) / 5 * (5 * f < nyq))
        _add(y, int(start * sr), (s * gate * _env_ar(m, sr, 0.01, 0.05)).astype(np.float32))
    return y


def _rain_draw(r: Rng) -> dict:
    return {"tilt": r.uniform(0.3, 1.0), "lo": r.uniform(200, 1500), "drops": r.uniform(50, 400)}


def _rain(p: dict, r: Rng, n: int, sr: int) -> np.ndarray:
    s = _noise(r, n, sr, p["lo"], 16000, tilt=p["tilt"])
    imp = np.zeros(n, np.float32)
    k = r.poisson(p["drops"] * n / sr)
    imp[r.integers(0, n, k)] = r.uniform(0.5, 3.0, k)
    s += 0.5 * _shape(imp, sr, 2000, 12000)
    return (s * _slow(r, n, sr, 0.3, rate=0.2)).astype(np.float32)


@dataclass(frozen=True)
class SynthClass:
    label: str
    family: str
    paper_avg_seconds: float    # Table III, average event duration in TUT-SED Synthetic 2016
    paper_total_seconds: float  # Table III, total duration
    draw: Callable[[Rng], dict]
    render: Callable[[dict, Rng, int, int], np.ndarray]


CLASSES: tuple[SynthClass, ...] = (
    SynthClass("glass smash", "impulsive", 1.2, 621, _glass_draw, _glass),
    SynthClass("gun shot", "impulsive", 1.7, 534, _gun_draw, _gun),
    SynthClass("cat meowing", "harmonic", 2.1, 941, _cat_draw, _cat),
    SynthClass("dog barking", "rhythmic", 5.0, 716, _dog_draw, _dog),
    SynthClass("thunder", "rumble", 5.9, 3007, _thunder_draw, _thunder),
    SynthClass("bird singing", "tonal", 6.1, 2298, _bird_draw, _bird),
    SynthClass("horse walk", "rhythmic", 6.4, 1614, _horse_draw, _horse),
    SynthClass("baby crying", "harmonic", 6.9, 2007, _baby_draw, _baby),
    SynthClass("motorcycle", "engine", 7.0, 3691, _moto_draw, _moto),
    SynthClass("footsteps", "rhythmic", 7.1, 1173, _steps_draw, _steps),
    SynthClass("crowd applause", "noise", 7.3, 3278, _applause_draw, _applause),
    SynthClass("bus", "engine", 7.8, 3464, _bus_draw, _bus),
    SynthClass("mixer", "engine", 7.9, 4020, _mixer_draw, _mixer),
    SynthClass("crowd cheering", "noise", 8.1, 4825, _cheer_draw, _cheer),
    SynthClass("alarms", "tonal", 8.2, 4405, _alarm_draw, _alarm),
    SynthClass("rain", "noise", 8.2, 3975, _rain_draw, _rain),
)
LABELS = tuple(c.label for c in CLASSES)
PAPER_SIZE = {"mixtures": 100, "minutes": 566.0}


class SynthBank:
    """Source bank of synthesized instances; instances of different splits never coincide.

    An instance is the seed of one source (its timbre, pitch range and rhythm); the
    instance seeds of split ``s`` are spawned from ``(seed, s)``, so no instance is shared.
    The splits in ``disjoint_files`` (by default validation and test) draw a fresh instance of each class for
    each mixture (``{split}/{class}/f{mixture:03d}``): no source instance is heard in two of their files, so
    their files are independent samples of the classes (a synthesized class has as many instances as asked).
    """

    classes = LABELS

    def __init__(self, seed: int, sample_rate: int, instances_per_class: dict[str, int],
                 disjoint_files: tuple[str, ...] = ("validation", "test")):
        self.seed, self.sr, self.n_inst = seed, sample_rate, instances_per_class
        self.disjoint_files = tuple(disjoint_files)
        self._params: dict[str, dict] = {}

    def instances(self, split: str) -> dict[str, list[str]]:
        return {c: [f"{split}/{c}/{i:03d}" for i in range(self.n_inst[split])] for c in LABELS}

    def file_instances(self, split: str, index: int) -> dict[str, list[str]]:
        """The instances mixture ``index`` of ``split`` draws from: its own one per class in a disjoint split,
        else the split's shared pool."""
        if split not in self.disjoint_files:
            return self.instances(split)
        return {c: [f"{split}/{c}/f{index:03d}"] for c in LABELS}

    def params(self, instance: str) -> dict:
        if instance not in self._params:
            split, label, idx = instance.split("/")
            key = (5, SPLITS.index(split), LABELS.index(label), int(idx[1:])) if idx.startswith("f") else \
                (2, SPLITS.index(split), LABELS.index(label), int(idx))
            ss = np.random.SeedSequence(self.seed, spawn_key=key)
            self._params[instance] = CLASSES[LABELS.index(label)].draw(np.random.default_rng(ss))
        return self._params[instance]

    def segment(self, split: str, label: str, instance: str, rng: Rng, seconds: float) -> tuple[np.ndarray, float]:
        cls = CLASSES[LABELS.index(label)]
        lead = rng.uniform(0.0, 4.0)  # start at a random point of the source's activity pattern
        n_lead, n = int(lead * self.sr), int(round(seconds * self.sr))
        seg_rng = np.random.default_rng(rng.integers(2**63))
        y = cls.render(self.params(instance), seg_rng, n_lead + n, self.sr)[n_lead:]
        return y.astype(np.float32, copy=False), lead


def split_instances(total: int) -> dict[str, int]:
    """Split ``total`` instances per class 60/20/20 (at least one per split)."""
    val = max(1, round(total * 0.2))
    return {"train": max(1, total - 2 * val), "validation": val, "test": val}


def generate_synth(out: str | Path, *, seed: int = 0, minutes_train: float = 12.0,
                   minutes_validation: float | None = None, minutes_test: float | None = None,
                   mixture_seconds: float = 60.0, tracks: int = 3, instances_per_class: int = 20,
                   sample_rate: int = 44100, paper_size: bool = False, overwrite: bool = False,
                   progress: bool = True, shared_instances: bool = False) -> dict[str, float]:
    """Write the ``synth`` dataset to ``out`` (``sedbench data generate synth`` and the first use of
    ``data=synth``): same arguments, same files; returns the minutes of audio per split. ``paper_size`` is
    the paper's 100 mixtures of 566 minutes in all, 62 instances per class (994 / 16), split 60/20/20.

    ``instances_per_class`` is the training pool's size (60 % of it, as before); each validation and test
    mixture has instances of its own (one per class), so no two of those files share a source and a
    comparison's files are independent. ``shared_instances`` gives the layout of sedbench before issue 35
    (validation and test mixtures drawn from pools of 20 % of ``instances_per_class``), to regenerate a dataset
    made then."""
    from sedbench.data.mix import MixtureRecipe, split_minutes, write_mixture_dataset

    if paper_size:
        total = PAPER_SIZE["minutes"]
        minutes = split_minutes(0.6 * total, 0.2 * total, 0.2 * total)
        recipe = MixtureRecipe(mixture_seconds=total * 60 / PAPER_SIZE["mixtures"], tracks=tracks)
        instances_per_class = 62
    else:
        minutes = split_minutes(float(minutes_train), minutes_validation, minutes_test)
        recipe = MixtureRecipe(mixture_seconds=float(mixture_seconds), tracks=int(tracks))
    bank = SynthBank(seed, sample_rate, split_instances(instances_per_class),
                     disjoint_files=() if shared_instances else ("validation", "test"))
    extra = {"instances_per_class": instances_per_class,
             "evaluation_instances": "shared pools (20 % of instances_per_class each)" if shared_instances else
             "one per class per validation and test mixture: no instance in two of their files",
             "families": {c.label: c.family for c in CLASSES}}
    write_mixture_dataset(out, "synth", bank, recipe, minutes, sample_rate, seed, overwrite=overwrite,
                          progress=progress, extra=extra)
    return minutes


def ensure_generated(root: str | Path, recipe: dict, progress: bool = True) -> bool:
    """Generate the embedded dataset at ``root`` from ``recipe`` (keyword arguments of :func:`generate_synth`)
    when ``root`` does not exist yet; returns whether this call generated it.

    Workers starting at once: one generates under an exclusive lock on ``.<root>.lock`` beside it, the others
    wait and then find it there. The folder appears whole (``write_mixture_dataset`` renames a finished
    staging folder into place), so nobody reads a half-written dataset."""
    import fcntl
    import logging

    root = Path(root)
    if root.exists():
        return False
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logging.getLogger("sedbench").warning("%s: another process is generating it; waiting", root)
            fcntl.flock(lock, fcntl.LOCK_EX)
        if root.exists():  # generated by the other process meanwhile
            return False
        what = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in recipe.items())
        logging.getLogger("sedbench").warning("%s not found: generating the embedded synth dataset there (%s); "
                                              "later runs reuse it", root, what)
        generate_synth(root, **recipe, progress=progress)
    return True
