"""Reflex configuration. Backend settings live in backend.config; nothing secret here."""

import reflex as rx

from marketplace_app.first_paint import LandingPaintsFirst

config = rx.Config(
    app_name="marketplace_app",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    # the build's files precompressed; Reflex serves the best one the browser accepts (brotli: ~15 % fewer bytes
    # than gzip on a phone's first visit; gzip for the rest)
    frontend_compression_formats=["brotli", "gzip"],
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(appearance="light", accent_color="indigo", gray_color="slate", radius="large")
        ),
        rx.plugins.SitemapPlugin(),
        LandingPaintsFirst(),  # the landing page paints before the app downloads
    ],
)
