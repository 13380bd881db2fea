"""Reflex configuration. Backend settings live in backend.config; nothing secret here."""

import reflex as rx

config = rx.Config(
    app_name="marketplace_app",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(appearance="light", accent_color="indigo", gray_color="slate", radius="large")
        ),
        rx.plugins.SitemapPlugin(),
    ],
)
