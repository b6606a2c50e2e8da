"""Vendor emulation: `wirecheck serve --profile hoonify|hontoni|hoziron|compactifai` serves that vendor's auth,
paths, headers, extra fields and model ids (spec/profiles), mapped onto the one engine."""
