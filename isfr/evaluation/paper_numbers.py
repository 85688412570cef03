"""The paper's reported numbers as data (section 4, Tables 1 and 2, abstract, section 4.3), and the
inconsistencies found in the paper.

Values are copied exactly as printed, typos included (Table 1's 13.31 dB stays 13.31 here; see
:data:`INCONSISTENCIES`). Every frame built here has ``source == REPORTED``; measured numbers live in
:mod:`isfr.evaluation` and are never stored in these frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

REPORTED = "reported in the paper"
RANGES: tuple[str, ...] = ("20-40", "40-60")  # section 4.2.1 / Table 2: "20%-40%", "40%-60%"
METRIC_LABELS: dict[str, str] = {"psnr": "PSNR", "ssim": "SSIM", "l1": "L1", "lpips": "LPIPS",
                                 "id_dist": "ID dist"}

#: Table 1 (ablation, section 4.2): variant -> stage switches as ticked in the table.
TABLE1_VARIANTS: dict[str, dict[str, bool]] = {
    "pSp+IFR": dict(psp=True, ifr=True, sfr=False, weighting=False),  # 4.2.1, Fig. 6
    "pSp+SFR": dict(psp=True, ifr=False, sfr=True, weighting=False),  # 4.2.2, Fig. 7
    "pSp+IFR+SFR w/o weighting": dict(psp=True, ifr=True, sfr=True, weighting=False),  # 4.2.3, Fig. 8
    "ISFRNet": dict(psp=True, ifr=True, sfr=True, weighting=True),  # full model (bold row)
}

#: Table 1: variant -> range -> metric -> value, as printed (PSNR in dB).
TABLE1: dict[str, dict[str, dict[str, float]]] = {
    "pSp+IFR": {"20-40": {"psnr": 27.81, "ssim": 0.902}, "40-60": {"psnr": 17.77, "ssim": 0.682}},
    "pSp+SFR": {"20-40": {"psnr": 17.76, "ssim": 0.683}, "40-60": {"psnr": 13.61, "ssim": 0.367}},
    "pSp+IFR+SFR w/o weighting": {"20-40": {"psnr": 26.73, "ssim": 0.915},
                                  "40-60": {"psnr": 22.05, "ssim": 0.792}},
    "ISFRNet": {"20-40": {"psnr": 28.12, "ssim": 0.942}, "40-60": {"psnr": 13.31, "ssim": 0.840}},  # 13.31 sic
}

#: Table 2 column headers with the reference numbers the table gives (those are the right ones).
TABLE2_CITATIONS: dict[str, str] = {"pSp": "[3]", "LGNet": "[4]", "MADF": "[20]", "EC": "[14]", "ISFRNet": "Ours"}

#: Table 2 (section 4.3): method -> range -> metric -> value, as printed ("Ours" = ISFRNet).
TABLE2: dict[str, dict[str, dict[str, float]]] = {
    "pSp": {"20-40": {"psnr": 18.66, "ssim": 0.651, "l1": 0.113, "lpips": 0.102},
            "40-60": {"psnr": 17.53, "ssim": 0.581, "l1": 0.151, "lpips": 0.205}},
    "LGNet": {"20-40": {"psnr": 27.99, "ssim": 0.939, "l1": 0.020, "lpips": 0.074},
              "40-60": {"psnr": 22.93, "ssim": 0.832, "l1": 0.063, "lpips": 0.144}},
    "MADF": {"20-40": {"psnr": 22.70, "ssim": 0.874, "l1": 0.043, "lpips": 0.113},
             "40-60": {"psnr": 19.72, "ssim": 0.764, "l1": 0.071, "lpips": 0.183}},
    "EC": {"20-40": {"psnr": 28.11, "ssim": 0.946, "l1": 0.029, "lpips": 0.054},
           "40-60": {"psnr": 22.83, "ssim": 0.836, "l1": 0.067, "lpips": 0.126}},
    "ISFRNet": {"20-40": {"psnr": 28.12, "ssim": 0.942, "l1": 0.015, "lpips": 0.090},
                "40-60": {"psnr": 23.31, "ssim": 0.840, "l1": 0.053, "lpips": 0.177}},
}

#: Abstract: ISFRNet's four scores per range (identical to Table 2's "Ours").
ABSTRACT: dict[str, dict[str, float]] = {
    "20-40": {"psnr": 28.12, "ssim": 0.942, "l1": 0.015, "lpips": 0.090},
    "40-60": {"psnr": 23.31, "ssim": 0.840, "l1": 0.053, "lpips": 0.177},
}

#: Section 4.3: per-image LPIPS of the three Fig. 9 rows.
FIG9_LPIPS: dict[str, tuple[float, float, float]] = {
    "LGNet": (0.163, 0.035, 0.065), "EC": (0.135, 0.202, 0.121), "ISFRNet": (0.181, 0.081, 0.093),
}

#: Section 4.1 set-up (for provenance lines of the paper's numbers).
SETUP: dict[str, object] = dict(
    dataset="CelebA, random 182,339 train / 20,260 test", masks="NVIDIA irregular mask test set (12,000)",
    resolution=256, batch_size=1, optimizer="Adam, lr 1e-4, default betas", hardware="NVIDIA TITAN Xp",
)


def _long(table: dict[str, dict[str, dict[str, float]]], name: str) -> pd.DataFrame:
    rows = [dict(table=name, method=m, paper_range=r, metric=k, value=v, source=REPORTED)
            for m, by_range in table.items() for r, metrics in by_range.items() for k, v in metrics.items()]
    return pd.DataFrame(rows)


def table1_long() -> pd.DataFrame:
    """Table 1 in long form: ``table, method, paper_range, metric, value, source`` (values as printed)."""
    return _long(TABLE1, "Table 1")


def table2_long() -> pd.DataFrame:
    """Table 2 in long form: ``table, method, paper_range, metric, value, source`` (values as printed)."""
    return _long(TABLE2, "Table 2")


def wide(long: pd.DataFrame) -> pd.DataFrame:
    """Long form -> one row per method, columns ``"PSNR 20-40"`` ..., plus ``source``."""
    w = long.assign(col=[f"{METRIC_LABELS[m]} {r}" for m, r in zip(long["metric"], long["paper_range"])])
    out = w.pivot_table(index="method", columns="col", values="value", sort=False)
    cols = [f"{METRIC_LABELS[m]} {r}" for m in METRIC_LABELS for r in RANGES if f"{METRIC_LABELS[m]} {r}" in out]
    out = out[cols].reindex(pd.unique(long["method"]))
    out["source"] = REPORTED
    out.columns.name = None
    return out


def paper_value(table: str, method: str, paper_range: str, metric: str) -> float:
    """One printed value (NaN if the paper has none), e.g. ``paper_value("table2", "pSp", "20-40", "l1")``."""
    data = {"table1": TABLE1, "table2": TABLE2}[table.lower().replace(" ", "")]
    return float(data.get(method, {}).get(paper_range, {}).get(metric, np.nan))


def implied_rmse(psnr_db: float | np.ndarray) -> float | np.ndarray:
    """RMSE on [0, 1] of an image with this PSNR (data range 1): ``10 ** (-psnr / 20)``."""
    return 10.0 ** (-np.asarray(psnr_db, dtype=float) / 20.0)


def l1_rmse_check() -> pd.DataFrame:
    """Table 2's L1 / RMSE-implied-by-PSNR per method and range, beside ``sqrt(max hole ratio)``.

    For a composited output (errors only in the hole, fraction p) Cauchy-Schwarz gives per image
    ``L1 <= sqrt(p) * RMSE``. Means over images break the bound only through the spread of per-image
    PSNR (Jensen), so a ratio well above ``sqrt(p)`` -- near 1 for pSp -- hints at errors spread over
    the whole frame, i.e. an uncomposited output. A hint, not a proof.
    """
    rows = []
    for m, by_range in TABLE2.items():
        for r, v in by_range.items():
            p = int(r.split("-")[1]) / 100
            ratio = v["l1"] / float(implied_rmse(v["psnr"]))
            rows.append(dict(method=m, paper_range=r, l1=v["l1"], implied_rmse=float(implied_rmse(v["psnr"])),
                             ratio=ratio, composite_bound=float(np.sqrt(p)), source=REPORTED))
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Inconsistency:
    """One inconsistency (or gap) in the paper and how this implementation handles it."""

    where: str
    kind: str  # "number", "citation", "text", "equation", "unspecified", "observation"
    what: str
    handling: str


INCONSISTENCIES: tuple[Inconsistency, ...] = (
    Inconsistency(
        "Table 1, full model, 40-60%", "number",
        "PSNR printed as 13.31 dB; Table 2 and the abstract give 23.31 dB for the same model and range "
        "(SSIM 0.840 agrees in all three). 13.31 would also be below every ablation (17.77, 13.61, 22.05), "
        "contradicting sections 4.2.1 and 4.2.3 ('significantly/much higher').",
        "kept as printed in TABLE1; comparison tables flag it and show Table 2's 23.31 beside it."),
    Inconsistency(
        "Table 1, pSp+IFR vs full model, 20-40%", "number",
        "PSNR 27.81 vs 28.12 dB (0.31 dB) while SSIM 0.902 vs 0.942; section 4.2.1 calls the gain "
        "'significantly higher'. pSp+IFR also loses 10.0 dB from 20-40% to 40-60% (27.81 -> 17.77) where "
        "the other variants lose 4-5 dB.",
        "reported as printed; our CIs say whether such a gap is resolvable at our sample size."),
    Inconsistency(
        "Table 1, pSp+SFR 20-40% vs pSp+IFR 40-60%", "number",
        "The pSp+SFR 20-40% cell (17.76 / 0.683) nearly equals the pSp+IFR 40-60% cell (17.77 / 0.682): "
        "possibly a row shifted during typesetting.",
        "reported as printed."),
    Inconsistency(
        "Table 1 pSp+SFR vs Table 2 pSp", "number",
        "pSp+SFR (17.76 / 13.61 dB, SSIM 0.683 / 0.367) scores below pSp alone (18.66 / 17.53 dB, "
        "SSIM 0.651 / 0.581) at 40-60% and in PSNR at 20-40%: a refinement stage reading the known "
        "pixels makes the result worse than its input.",
        "reported as printed; we measure pSp composited and raw, and pSp+SFR, under one protocol."),
    Inconsistency(
        "Table 2, pSp row", "unspecified",
        "Not said whether pSp's output is composited. Its L1 (0.113 / 0.151) is 3-7x the others' and about "
        "equal to the RMSE implied by its PSNR (ratio ~1.0, see l1_rmse_check), which suggests a raw, "
        "uncomposited output (errors over the whole frame).",
        "pSp scored both ways: composited and raw (stage-1 image as generated)."),
    Inconsistency(
        "Table 2, EC vs Ours 20-40%", "observation",
        "Same PSNR (28.11 vs 28.12 dB) but L1 0.029 vs 0.015; possible only with very different error "
        "distributions, or different protocols per method (the baselines' numbers may come from their "
        "own code / papers).",
        "all methods we run share one protocol (isfr.evaluation.metrics.PROTOCOL)."),
    Inconsistency(
        "Fig. 9 caption vs Table 2 / references", "citation",
        "Fig. 9 cites LGNet as [3] (pSp, Richardson et al.) and MADF as [16] (Pan et al., deep generative "
        "prior); Table 2 cites LGNet [4] (Quan et al.) and MADF [20] (Zhu et al.), which are correct.",
        "TABLE2_CITATIONS follows Table 2."),
    Inconsistency(
        "Fig. 10 caption", "citation",
        "Cites EC as [13] (Xiong et al., foreground-aware inpainting); EC is [14] (Nazeri et al.), "
        "as Fig. 9 and Table 2 have it.", "EC = [14]."),
    Inconsistency(
        "Section 4.2.2 (pSp+SFR)", "text",
        "'Since there is no SFR refinement' describes the pSp+SFR experiment, which has SFR and lacks IFR; "
        "'no IFR refinement' is meant.", "read as 'no IFR'."),
    Inconsistency(
        "Table 1, pSp+SFR row vs section 4.2.2", "unspecified",
        "The row leaves the Weighting box empty, while section 4.2.2 says the data, losses and training "
        "settings are 'the same as for the ISFRNet'; whether its SFR weights eq. 1 is not stated.",
        "kept (the variant differs from the full model only in E_C reading I_c); "
        "isfr.experiments.runs.VARIANTS['psp_sfr'] says so."),
    Inconsistency(
        "Section 4.2.2", "text",
        "'These results are shown in the fourth column of Table 1': Table 1's fourth column is the SFR "
        "tick box; the results are the third and fourth rows.", "none needed."),
    Inconsistency(
        "Section 4.3", "text",
        "'compared our method with three other coarse-to-fine painting methods' while Table 2 has four "
        "baselines (pSp, LGNet, MADF, EC); pSp is not coarse-to-fine.", "none needed."),
    Inconsistency(
        "Section 4.3, Fig. 9 LPIPS", "observation",
        "The per-image LPIPS quoted for Fig. 9 average 0.118 for ours vs 0.153 for EC (ours better on two "
        "of three rows), the opposite of Table 2's ordering (0.090 vs 0.054 at 20-40%); the figure rows "
        "are selected examples.", "FIG9_LPIPS kept for reference only."),
    Inconsistency(
        "Section 3.3, eq. (1)", "equation",
        "Text: the weight is 'multiplied by matrix multiplication'; eq. (1) uses an element-wise product "
        "with the scalar 1/N_M (N_M = number of hole elements), which is undefined for an empty mask and "
        "~1e-5 at 256 px, i.e. nearly switches the E_I features off.",
        "isfr.models.sfr offers the literal and normalised variants (SFRConfig.weighting)."),
    Inconsistency(
        "Section 3.4, eqs. (3)-(4)", "equation",
        "The generator adversarial term L_adv^{D1} = E[log(1 - D1(I_c))] is written on I_c, the IFR input "
        "(stage-1 output), not the IFR output I_o, so it does not depend on IFR's parameters.",
        "isfr.losses (slip 1): the fake is the stage's output."),
    Inconsistency(
        "Section 3.4, eq. (10)", "equation",
        "SFR's total loss uses L_adv^{D1}, though section 3.2 names D2 as SFR's discriminator.",
        "isfr.losses (slip 4): SFR is judged by D2."),
    Inconsistency(
        "Section 3.4, eq. (8)", "equation",
        "The style loss normalises twice (K_p = 1/(C_p H_p W_p) inside, C_p C_p in the denominator) and "
        "applies K_p to only one Gram matrix.", "isfr.losses (slip 5): read as in Liu et al. 2018."),
    Inconsistency(
        "Section 3.4, eq. (10)", "number",
        "Printed weights perceptual 120, style 0.05; the PConv / LGNet recipe they come from has "
        "perceptual 0.05, style 120, so they look swapped.",
        "isfr.losses (slip 6): printed by default, LossConfig(style_perceptual_weights='lgnet') swaps."),
    Inconsistency(
        "Section 3.1", "text",
        "'a total of 18 target styles': 0-2 from the small, 3-6 from the medium, '7-8' from the large "
        "feature map accounts for 9; pSp maps 7-17 to the large map. pSp's encoder also emits W+ codes "
        "directly; no mapping network is applied to them.", "pSp as released (styles 7-17)."),
    Inconsistency(
        "Section 3.4", "text", "'the same adversarial loss function as the IRF': IRF is a typo for IFR.",
        "none needed."),
    Inconsistency(
        "Section 4.1 / Tables 1-2", "unspecified",
        "Metric protocol not given: composited or raw output, whole image or hole only, SSIM window, "
        "uint8 quantisation, L1 scale (values fit [0, 1]), LPIPS version (section 4.3 implies AlexNet), "
        "number of test images per range, and the CelebA split seed.",
        "one explicit protocol (isfr.evaluation.metrics.PROTOCOL) printed under every table."),
    Inconsistency(
        "Section 4.2.1", "unspecified",
        "pSp+IFR is trained with the reconstruction loss without the mask constraint, unlike the full "
        "model's IFR (eq. 2): the ablation's IFR is a different network, not the full model minus SFR.",
        "the pSp+IFR ablation needs its own IFR run with the unmasked L1."),
)


def inconsistencies_frame() -> pd.DataFrame:
    """:data:`INCONSISTENCIES` as a DataFrame (``where, kind, what, handling``)."""
    return pd.DataFrame([asdict(i) for i in INCONSISTENCIES])
