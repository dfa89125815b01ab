"""Chapter 8 (issue 37): the VQ-VAE diagram speaks the book's notation, and the EMA exercise's
reference is the running-mean update of the chapter, checked against a loop over the codes."""
import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from companion.exercises.core import REGISTRY  # noqa: E402
from companion.models import VQVAE, VQVAEConfig  # noqa: E402
from companion.viz import diagrams  # noqa: E402


def test_vq_diagram_uses_the_books_symbols():
    text = " ".join(t.get_text() for t in diagrams.architecture(VQVAE(VQVAEConfig(num_codes=32))).texts)
    for symbol in (r"$g_\phi$", r"$f_\theta$", r"\mathbf{z}_\mathrm{e}", r"\mathbf{z}_\mathrm{q}", r"\mathbf{e}_{c^*}"):
        assert symbol in text, symbol
    for old in ("encoder E", "decoder D", "z_e(x)", "e_k", "argmin_i"):
        assert old not in text, old


def test_ema_reference_is_a_running_mean_per_code():
    import companion.exercises.ch08_vq_vae  # noqa: F401  (registers the exercises)

    ex = REGISTRY["vq.ema_update"]
    for z, idx, N, a, gamma in ex.cases():
        expected = torch.empty_like(a)
        for c in range(len(N)):                       # one code at a time: S_c, N_c, a_c, e_c = a_c / N_c
            S_c = z[idx == c]
            N_c = gamma * N[c] + (1 - gamma) * len(S_c)
            a_c = gamma * a[c] + (1 - gamma) * S_c.sum(0)
            expected[c] = a_c / N_c
        assert torch.allclose(ex.reference(z, idx, N, a, gamma), expected, atol=1e-12)
