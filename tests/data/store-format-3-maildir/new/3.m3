From: Alice <alice@example.org>
To: carol@example.org
Subject: Re: Quarterly invoice
Date: 4 Oct 2023 10:00:00 +0000
Message-ID: <3.m3@example.org>

Paid today, thanks. The receipt number is 4471.
