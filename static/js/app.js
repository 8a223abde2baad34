// Site-wide behaviour. Screen-specific scripts live beside their templates' static files.
