"""ipywidgets explorers: sliders that redraw a model's samples.

Each explorer draws its first view at once, so a notebook executed headlessly stores a real
figure in the widget's state (the website shows it) and the static figure beside it.
"""

from __future__ import annotations

import torch


def digit_explorer(G, n: int = 8):
    """Pick a digit and a seed; see ``n`` samples of G(z | digit)."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    from ganlab.viz.grids import show_grid

    digit = widgets.IntSlider(value=3, min=0, max=9, description="digit")
    seed = widgets.IntSlider(value=0, min=0, max=99, description="seed")
    out = widgets.Output()
    device = next(G.parameters()).device

    def draw(*_):
        gen = torch.Generator().manual_seed(seed.value)
        z = G.sample_z(n, generator=gen).to(device)
        y = torch.full((n,), digit.value, dtype=torch.long, device=device)
        with torch.no_grad():
            images = G(z, y).float().cpu()
        out.clear_output(wait=True)
        with out:
            fig, ax = plt.subplots(figsize=(0.9 * n, 1.2))
            show_grid(images, nrow=n, ax=ax, title=f"G(z | y={digit.value}), seed {seed.value}")
            display(fig)
            plt.close(fig)

    digit.observe(draw, names="value")
    seed.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([digit, seed]), out])


DEFAULT_CAPTION = "a small bird with a red crown, blue wings and a white belly"


def caption_seed_explorer(figure, caption: str | None = None, seed: int = 0):
    """A caption box (press Enter) and a seed slider around ``figure(caption, seed)``, which
    returns a matplotlib figure. A caption the encoder refuses (``ValueError``/``TypeError``,
    e.g. no words at all) prints the error instead of a figure."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    box = widgets.Text(
        value=caption or DEFAULT_CAPTION,
        description="caption",
        layout=widgets.Layout(width="95%"),
        continuous_update=False,
    )
    slider = widgets.IntSlider(value=seed, min=0, max=99, description="seed")
    out = widgets.Output()

    def draw(*_):
        out.clear_output(wait=True)
        with out:
            try:
                fig = figure(box.value, slider.value)
            except (ValueError, TypeError) as err:
                print(f"cannot encode this caption: {err}")
                return
            display(fig)
            plt.close(fig)

    box.observe(draw, names="value")
    slider.observe(draw, names="value")
    draw()
    return widgets.VBox([box, slider, out])


def caption_explorer(G, text_encoder, n: int = 8, caption: str | None = None, sample=None):
    """Type a caption, pick a seed; see ``n`` samples of G(z, phi(caption)).

    ``text_encoder`` maps a list of captions to features with a ``.sentence`` (B, D) tensor
    (``ganlab.text.train.load_encoders``); unknown words become <unk>, an empty caption shows
    the error message instead of birds. ``sample(t, seed) -> {row label: images}`` draws
    several rows per caption (e.g. StackGAN's Stage-I and Stage-II); by default one row,
    ``G(z, t)`` with z drawn from the seed.
    """
    import matplotlib.pyplot as plt

    from ganlab.viz.grids import show_grid

    device = next(G.parameters()).device

    def one_row(t, s):
        z = torch.randn(len(t), G.z_dim, generator=torch.Generator().manual_seed(s)).to(device)
        return {"": G(z, t.to(device)).float().cpu()}

    sample = sample or one_row

    def figure(text, s):
        t = text_encoder([text] * n).sentence
        with torch.no_grad():
            rows = sample(t, s)
        size = max(r.shape[-1] for r in rows.values())
        images = torch.cat(
            [torch.nn.functional.interpolate(r, size=(size, size)) for r in rows.values()]
        )
        labels = list(rows) if len(rows) > 1 else None
        fig, ax = plt.subplots(figsize=(1.1 * n, 0.3 + 1.3 * len(rows)))
        show_grid(images, nrow=n, ax=ax, title=f'"{text}", seed {s}', row_labels=labels)
        return fig

    return caption_seed_explorer(figure, caption)


def style_mixing_explorer(figure, num_layers: int, seed_a: int = 0, seed_b: int = 1):
    """StyleGAN's explorer: two seeds, a crossover slider, psi and noise switches around
    ``figure(seed_a, seed_b, crossover, psi, noise) -> matplotlib figure`` (layers below
    the crossover take A's w, the others B's; ``noise`` is True or False)."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    a = widgets.IntSlider(value=seed_a, min=0, max=999, description="seed A")
    b = widgets.IntSlider(value=seed_b, min=0, max=999, description="seed B")
    k = widgets.IntSlider(
        value=num_layers // 2, min=0, max=num_layers, description="crossover"
    )  # fmt: skip
    psi = widgets.FloatSlider(value=1.0, min=-1.0, max=1.0, step=0.05, description="psi")
    noise = widgets.Checkbox(value=True, description="noise")
    out = widgets.Output()

    def draw(*_):
        out.clear_output(wait=True)
        with out:
            fig = figure(a.value, b.value, k.value, psi.value, noise.value)
            display(fig)
            plt.close(fig)

    for w in (a, b, k, psi, noise):
        w.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([a, b]), widgets.HBox([k, psi, noise]), out])
