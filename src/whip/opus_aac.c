/*
 * Opus -> AAC-LC transcoder for WHIP ingest, over libavcodec (FFmpeg 5.1 API).
 *
 * FFmpeg's native "opus" decoder (48 kHz, stereo: RTP's opus/48000/2, mono packets are
 * upmixed) feeds an audio FIFO in the encoder's layout (float planar, 1 or 2 channels);
 * FFmpeg's native "aac" encoder takes 1024-sample frames from it. No resampling: both
 * sides run at 48 kHz. Timestamps are counted in samples at 48 kHz from the first sample
 * queued (decoded or silence), plus any forward jump recorded by oa_gap().
 *
 * Everything is bounded: Opus packets up to OA_PACKET_MAX bytes, the FIFO to OA_FIFO_MAX
 * samples (beyond it the oldest whole frames are dropped and the timeline skips over
 * them), silence per gap to OA_SILENCE_MAX samples (the rest of a longer gap becomes a
 * timestamp jump). Errors are negative AVERROR codes (oa_strerror names them); a decode
 * error only loses that packet.
 *
 * The oa_test_* functions at the end exist for the Rust unit tests; unreferenced, the
 * linker's section GC drops them from the module.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libavutil/mem.h>

#define OA_RATE 48000
#define OA_FIFO_MAX (2 * OA_RATE)   /* 2 s of audio waiting for the encoder */
#define OA_SILENCE_MAX OA_RATE      /* 1 s of silence per gap */
#define OA_CHUNK 5760               /* 120 ms, the longest Opus packet: conversion unit */
#define OA_PACKET_MAX 65536         /* > 48 frames x 1275 bytes, Opus's own ceiling */
/* Added to the level of everything the codecs log through their contexts: hides it
 * (garbage input would otherwise flood nginx's stderr); errors come back as codes. */
#define OA_LOG_OFFSET 64

typedef struct oa oa_t;

struct oa {
    AVCodecContext *dec, *enc;
    AVPacket *pkt;
    AVFrame *dframe;   /* decoder output */
    AVFrame *eframe;   /* encoder input, fs samples */
    AVAudioFifo *fifo; /* float planar, `channels` channels */
    int channels, fs;
    int64_t head_pts;  /* pts of the FIFO's first sample */
    int jump_at;       /* FIFO offset (a multiple of fs) from which `jump` applies; -1: none */
    int64_t jump;
    float scratch[2][OA_CHUNK];
};

static void set_err(char *err, size_t len, const char *what, int code)
{
    char buf[AV_ERROR_MAX_STRING_SIZE] = "";

    if (!err || !len)
        return;
    if (code)
        av_strerror(code, buf, sizeof buf);
    snprintf(err, len, "%s%s%s", what, code ? ": " : "", buf);
}

void oa_strerror(int code, char *buf, size_t len)
{
    if (buf && len)
        av_strerror(code, buf, len);
}

void oa_free(oa_t *t)
{
    if (!t)
        return;
    avcodec_free_context(&t->dec);
    avcodec_free_context(&t->enc);
    av_packet_free(&t->pkt);
    av_frame_free(&t->dframe);
    av_frame_free(&t->eframe);
    av_audio_fifo_free(t->fifo);
    av_free(t);
}

oa_t *oa_new(int channels, int bitrate, char *err, size_t errlen)
{
    const AVCodec *dc, *ec;
    const enum AVSampleFormat *f;
    oa_t *t;
    int ret;

    if (channels != 1 && channels != 2) {
        set_err(err, errlen, "AAC channels must be 1 or 2", 0);
        return NULL;
    }
    if (bitrate < 8000 || bitrate > 512000) {
        set_err(err, errlen, "AAC bitrate must be 8000..512000 bit/s", 0);
        return NULL;
    }
    dc = avcodec_find_decoder_by_name("opus"); /* the native one, not libopus */
    ec = avcodec_find_encoder_by_name("aac");  /* the native one */
    if (!dc || !ec) {
        set_err(err, errlen, dc ? "libavcodec has no native aac encoder" : "libavcodec has no opus decoder", 0);
        return NULL;
    }
    for (f = ec->sample_fmts; f && *f != AV_SAMPLE_FMT_NONE && *f != AV_SAMPLE_FMT_FLTP; f++)
        ;
    if (!f || *f != AV_SAMPLE_FMT_FLTP) {
        set_err(err, errlen, "the aac encoder does not take planar float", 0);
        return NULL;
    }

    t = av_mallocz(sizeof *t);
    if (!t) {
        set_err(err, errlen, "out of memory", AVERROR(ENOMEM));
        return NULL;
    }
    t->channels = channels;
    t->jump_at = -1;
    t->dec = avcodec_alloc_context3(dc);
    t->enc = avcodec_alloc_context3(ec);
    t->pkt = av_packet_alloc();
    t->dframe = av_frame_alloc();
    t->eframe = av_frame_alloc();
    if (!t->dec || !t->enc || !t->pkt || !t->dframe || !t->eframe) {
        set_err(err, errlen, "out of memory", AVERROR(ENOMEM));
        goto fail;
    }
    t->dec->log_level_offset = OA_LOG_OFFSET;
    t->enc->log_level_offset = OA_LOG_OFFSET;

    t->dec->sample_rate = OA_RATE;
    av_channel_layout_default(&t->dec->ch_layout, 2);
    if ((ret = avcodec_open2(t->dec, dc, NULL)) < 0) {
        set_err(err, errlen, "opening the opus decoder", ret);
        goto fail;
    }
    if (t->dec->sample_rate != OA_RATE) {
        set_err(err, errlen, "the opus decoder does not output 48 kHz", 0);
        goto fail;
    }

    t->enc->sample_fmt = AV_SAMPLE_FMT_FLTP;
    t->enc->sample_rate = OA_RATE;
    av_channel_layout_default(&t->enc->ch_layout, channels);
    t->enc->bit_rate = bitrate;
    t->enc->profile = FF_PROFILE_AAC_LOW;
    t->enc->time_base = (AVRational){ 1, OA_RATE };
    t->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER; /* AudioSpecificConfig in extradata */
    if ((ret = avcodec_open2(t->enc, ec, NULL)) < 0) {
        set_err(err, errlen, "opening the aac encoder", ret);
        goto fail;
    }
    t->fs = t->enc->frame_size;
    if (t->fs <= 0 || t->fs > OA_CHUNK || t->enc->extradata_size <= 0) {
        set_err(err, errlen, "unexpected aac encoder frame size or extradata", 0);
        goto fail;
    }

    t->eframe->format = AV_SAMPLE_FMT_FLTP;
    t->eframe->sample_rate = OA_RATE;
    t->eframe->nb_samples = t->fs;
    if ((ret = av_channel_layout_copy(&t->eframe->ch_layout, &t->enc->ch_layout)) < 0
        || (ret = av_frame_get_buffer(t->eframe, 0)) < 0) {
        set_err(err, errlen, "allocating the encoder frame", ret);
        goto fail;
    }
    t->fifo = av_audio_fifo_alloc(AV_SAMPLE_FMT_FLTP, channels, OA_FIFO_MAX + t->fs);
    if (!t->fifo) {
        set_err(err, errlen, "allocating the audio fifo", AVERROR(ENOMEM));
        goto fail;
    }
    return t;

fail:
    oa_free(t);
    return NULL;
}

int oa_asc(const oa_t *t, uint8_t *out, int cap)
{
    if (!t || !out)
        return AVERROR(EINVAL);
    if (cap < t->enc->extradata_size)
        return AVERROR(ENOSPC);
    memcpy(out, t->enc->extradata, t->enc->extradata_size);
    return t->enc->extradata_size;
}

/* `n` samples left the FIFO's head. */
static void advance(oa_t *t, int n)
{
    if (t->jump_at >= 0 && n >= t->jump_at) {
        t->head_pts += n + t->jump;
        t->jump_at = -1;
        t->jump = 0;
    } else {
        t->head_pts += n;
        if (t->jump_at >= 0)
            t->jump_at -= n;
    }
}

/* Append n <= OA_CHUNK samples (planes of `channels` floats), dropping the oldest whole
 * frames when the FIFO would pass OA_FIFO_MAX. */
static int fifo_put(oa_t *t, float **planes, int n)
{
    int size = av_audio_fifo_size(t->fifo);
    int over = size + n - OA_FIFO_MAX;

    if (over > 0) {
        int d = (over + t->fs - 1) / t->fs * t->fs;
        if (d > size)
            d = size;
        av_audio_fifo_drain(t->fifo, d);
        advance(t, d);
    }
    return av_audio_fifo_write(t->fifo, (void **)planes, n) == n ? 0 : AVERROR(ENOMEM);
}

static int put_silence(oa_t *t, int64_t n)
{
    float *planes[2] = { t->scratch[0], t->scratch[1] };
    int ret;

    memset(t->scratch, 0, sizeof t->scratch);
    while (n > 0) {
        int k = n > OA_CHUNK ? OA_CHUNK : (int)n;
        if ((ret = fifo_put(t, planes, k)) < 0)
            return ret;
        n -= k;
    }
    return 0;
}

static int supported_fmt(int fmt)
{
    return fmt == AV_SAMPLE_FMT_FLTP || fmt == AV_SAMPLE_FMT_FLT || fmt == AV_SAMPLE_FMT_S16P
        || fmt == AV_SAMPLE_FMT_S16;
}

static float sample_at(const AVFrame *f, int nc, int ch, int i)
{
    float s;

    switch (f->format) {
    case AV_SAMPLE_FMT_FLTP: s = ((const float *)f->extended_data[ch])[i]; break;
    case AV_SAMPLE_FMT_FLT: s = ((const float *)f->data[0])[i * nc + ch]; break;
    case AV_SAMPLE_FMT_S16P: s = ((const int16_t *)f->extended_data[ch])[i] / 32768.0f; break;
    case AV_SAMPLE_FMT_S16: s = ((const int16_t *)f->data[0])[i * nc + ch] / 32768.0f; break;
    default: s = 0;
    }
    return isfinite(s) ? s : 0.0f;
}

/* Decoded frame -> encoder layout (planar float, mono = mean of the inputs) -> FIFO. */
static int queue_frame(oa_t *t, const AVFrame *f)
{
    float *planes[2] = { t->scratch[0], t->scratch[1] };
    int nc = f->ch_layout.nb_channels, off, i, c, ret;

    if (nc < 1 || f->nb_samples < 0 || !supported_fmt(f->format))
        return AVERROR(ENOSYS);
    if (f->sample_rate && f->sample_rate != OA_RATE)
        return AVERROR(ENOSYS);
    for (off = 0; off < f->nb_samples; off += OA_CHUNK) {
        int n = f->nb_samples - off > OA_CHUNK ? OA_CHUNK : f->nb_samples - off;
        for (i = 0; i < n; i++) {
            if (t->channels == 1) {
                float s = 0;
                for (c = 0; c < nc; c++)
                    s += sample_at(f, nc, c, off + i);
                t->scratch[0][i] = s / nc;
            } else {
                t->scratch[0][i] = sample_at(f, nc, 0, off + i);
                t->scratch[1][i] = sample_at(f, nc, nc > 1 ? 1 : 0, off + i);
            }
        }
        if ((ret = fifo_put(t, planes, n)) < 0)
            return ret;
    }
    return 0;
}

int oa_push(oa_t *t, const uint8_t *opus, int len)
{
    int ret, r, total = 0;

    if (!t || !opus || len <= 0 || len > OA_PACKET_MAX)
        return AVERROR(EINVAL);
    /* A padded, refcounted copy: the decoder may read past the end and keeps a reference. */
    if ((ret = av_new_packet(t->pkt, len)) < 0)
        return ret;
    memcpy(t->pkt->data, opus, len);
    ret = avcodec_send_packet(t->dec, t->pkt);
    av_packet_unref(t->pkt);
    /* Drain even after an error: the decoder must be empty for the next packet. */
    for (;;) {
        r = avcodec_receive_frame(t->dec, t->dframe);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            break;
        if (r < 0) {
            if (ret >= 0)
                ret = r;
            break;
        }
        r = queue_frame(t, t->dframe);
        if (r >= 0)
            total += t->dframe->nb_samples;
        av_frame_unref(t->dframe);
        if (r < 0) {
            ret = r;
            break;
        }
    }
    return ret < 0 ? ret : total;
}

int oa_gap(oa_t *t, int64_t samples)
{
    int64_t sil, rest;
    int pad = 0, ret;

    if (!t || samples < 0)
        return AVERROR(EINVAL);
    sil = samples < OA_SILENCE_MAX ? samples : OA_SILENCE_MAX;
    rest = samples - sil;
    if (rest < t->fs) { /* not worth a jump */
        sil += rest;
        rest = 0;
    }
    if ((ret = put_silence(t, sil)) < 0)
        return ret;
    if (rest > 0) {
        /* Complete the pending frame so the jump falls on a frame boundary. */
        pad = (t->fs - av_audio_fifo_size(t->fifo) % t->fs) % t->fs;
        if ((ret = put_silence(t, pad)) < 0)
            return ret;
        rest -= pad; /* > 0: rest >= fs > pad */
        if (t->jump_at >= 0) {
            /* A jump already waits further up the FIFO: the audio between the two gaps
             * moves late by this one, the timeline stays monotonic. */
            t->jump += rest;
        } else if (av_audio_fifo_size(t->fifo) == 0) {
            t->head_pts += rest;
        } else {
            t->jump_at = av_audio_fifo_size(t->fifo);
            t->jump = rest;
        }
    }
    return (int)sil + pad;
}

int oa_pull(oa_t *t, uint8_t *out, int cap, int64_t *pts)
{
    int ret, n;

    if (!t || !out || !pts || cap < 0)
        return AVERROR(EINVAL);
    for (;;) {
        ret = avcodec_receive_packet(t->enc, t->pkt);
        if (ret >= 0) {
            n = t->pkt->size;
            if (n > cap) {
                av_packet_unref(t->pkt);
                return AVERROR(ENOSPC);
            }
            memcpy(out, t->pkt->data, n);
            *pts = t->pkt->pts;
            av_packet_unref(t->pkt);
            return n;
        }
        if (ret != AVERROR(EAGAIN))
            return ret;
        if (av_audio_fifo_size(t->fifo) < t->fs)
            return 0;
        /* The encoder may still hold a reference to the previous frame's buffer. */
        if ((ret = av_frame_make_writable(t->eframe)) < 0)
            return ret;
        if (av_audio_fifo_read(t->fifo, (void **)t->eframe->extended_data, t->fs) != t->fs)
            return AVERROR_BUG;
        t->eframe->pts = t->head_pts;
        advance(t, t->fs);
        if ((ret = avcodec_send_frame(t->enc, t->eframe)) < 0)
            return ret;
    }
}

/* ---- test support ------------------------------------------------------------------ */

static void put_sample(AVFrame *f, int nc, int ch, int i, float s)
{
    switch (f->format) {
    case AV_SAMPLE_FMT_FLTP: ((float *)f->extended_data[ch])[i] = s; break;
    case AV_SAMPLE_FMT_FLT: ((float *)f->data[0])[i * nc + ch] = s; break;
    case AV_SAMPLE_FMT_S16P: ((int16_t *)f->extended_data[ch])[i] = (int16_t)lrintf(s * 32767); break;
    case AV_SAMPLE_FMT_S16: ((int16_t *)f->data[0])[i * nc + ch] = (int16_t)lrintf(s * 32767); break;
    default: break;
    }
}

/* `frames` x 20 ms of a `freq` Hz sine (amplitude `amp`, same in every channel) as Opus
 * packets: libopus if present, else FFmpeg's experimental native encoder. Packets go back
 * to back into `out`, their lengths into `lens`. Returns the packet count or <0. */
int oa_test_opus_sine(int channels, double freq, double amp, int frames, uint8_t *out, int cap,
                      int *lens, int maxpkts)
{
    const AVCodec *ec = avcodec_find_encoder_by_name("libopus");
    AVCodecContext *c = NULL;
    AVFrame *f = av_frame_alloc();
    AVPacket *p = av_packet_alloc();
    int ret = 0, npkt = 0, used = 0, i, k, ch;
    int64_t n = 0;

    if (!ec)
        ec = avcodec_find_encoder_by_name("opus");
    if (!ec || !f || !p || !(c = avcodec_alloc_context3(ec))) {
        ret = AVERROR(ENOMEM);
        goto end;
    }
    c->strict_std_compliance = FF_COMPLIANCE_EXPERIMENTAL;
    c->sample_rate = OA_RATE;
    c->sample_fmt = ec->sample_fmts ? ec->sample_fmts[0] : AV_SAMPLE_FMT_FLTP;
    c->bit_rate = 64000 * channels;
    c->time_base = (AVRational){ 1, OA_RATE };
    av_channel_layout_default(&c->ch_layout, channels);
    if ((ret = avcodec_open2(c, ec, NULL)) < 0)
        goto end;
    f->format = c->sample_fmt;
    f->nb_samples = c->frame_size > 0 ? c->frame_size : 960;
    if ((ret = av_channel_layout_copy(&f->ch_layout, &c->ch_layout)) < 0
        || (ret = av_frame_get_buffer(f, 0)) < 0)
        goto end;
    for (k = 0; k <= frames; k++) {
        if (k < frames) {
            if ((ret = av_frame_make_writable(f)) < 0)
                goto end;
            for (i = 0; i < f->nb_samples; i++, n++)
                for (ch = 0; ch < channels; ch++)
                    put_sample(f, channels, ch, i, (float)(amp * sin(2 * M_PI * freq * n / OA_RATE)));
            f->pts = n - f->nb_samples;
        }
        if ((ret = avcodec_send_frame(c, k < frames ? f : NULL)) < 0)
            goto end;
        while ((ret = avcodec_receive_packet(c, p)) >= 0) {
            if (npkt >= maxpkts || used + p->size > cap) {
                ret = AVERROR(ENOSPC);
                goto end;
            }
            memcpy(out + used, p->data, p->size);
            used += p->size;
            lens[npkt++] = p->size;
            av_packet_unref(p);
        }
        if (ret != AVERROR(EAGAIN) && ret != AVERROR_EOF)
            goto end;
    }
    ret = npkt;
end:
    avcodec_free_context(&c);
    av_frame_free(&f);
    av_packet_free(&p);
    return ret;
}

/* Decodes `n` raw AAC access units (lengths in `lens`, back to back in `data`) with the
 * native aac decoder configured by `asc`; channel 0 goes to `out`. Returns the sample
 * count or <0; the decoder's channel count goes to *channels. */
int oa_test_aac_decode(const uint8_t *asc, int asclen, const uint8_t *data, const int *lens, int n,
                       float *out, int cap, int *channels)
{
    const AVCodec *dc = avcodec_find_decoder_by_name("aac");
    AVCodecContext *c = NULL;
    AVFrame *f = av_frame_alloc();
    AVPacket *p = av_packet_alloc();
    int ret = 0, k, got = 0, off = 0;

    if (!dc || !f || !p || asclen <= 0 || !(c = avcodec_alloc_context3(dc))) {
        ret = AVERROR(EINVAL);
        goto end;
    }
    c->extradata = av_mallocz(asclen + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!c->extradata) {
        ret = AVERROR(ENOMEM);
        goto end;
    }
    memcpy(c->extradata, asc, asclen);
    c->extradata_size = asclen;
    if ((ret = avcodec_open2(c, dc, NULL)) < 0)
        goto end;
    for (k = 0; k < n; off += lens[k++]) {
        if ((ret = av_new_packet(p, lens[k])) < 0)
            goto end;
        memcpy(p->data, data + off, lens[k]);
        ret = avcodec_send_packet(c, p);
        av_packet_unref(p);
        if (ret < 0)
            goto end;
        while ((ret = avcodec_receive_frame(c, f)) >= 0) {
            int m = f->nb_samples;
            if (got + m > cap)
                m = cap - got;
            if (f->format != AV_SAMPLE_FMT_FLTP) {
                av_frame_unref(f);
                ret = AVERROR(ENOSYS);
                goto end;
            }
            memcpy(out + got, f->extended_data[0], m * sizeof(float));
            got += m;
            *channels = f->ch_layout.nb_channels;
            av_frame_unref(f);
        }
        if (ret != AVERROR(EAGAIN))
            goto end;
    }
    ret = got;
end:
    avcodec_free_context(&c);
    av_frame_free(&f);
    av_packet_free(&p);
    return ret;
}
