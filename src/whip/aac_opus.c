/*
 * AAC -> Opus transcoder for WHEP playback, over libavcodec and libswresample (FFmpeg 5.1
 * API): an RTMP publisher's AAC (any rate, 1 or 2 channels) is decoded by FFmpeg's native
 * "aac" decoder, resampled to 48 kHz interleaved float in the output layout, queued in an
 * audio FIFO, and encoded 20 ms at a time by "libopus" (FFmpeg's native "opus" encoder is
 * experimental). Timestamps are counted in 48 kHz samples from the first sample queued.
 *
 * Everything is bounded: AAC access units up to AO_PACKET_MAX bytes, the FIFO to AO_FIFO_MAX
 * samples (beyond it the oldest whole frames are dropped and the timeline skips over them).
 * Errors are negative AVERROR codes (oa_strerror in opus_aac.c names them); a decode error
 * only loses that access unit.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/mem.h>
#include <libswresample/swresample.h>

#define AO_RATE 48000
#define AO_FIFO_MAX (2 * AO_RATE)  /* 2 s of audio waiting for the encoder */
#define AO_PACKET_MAX 65536        /* > 6144 bits x 8 channels, AAC's own ceiling */
#define AO_CHUNK 16384             /* resampler output per call, in samples */
#define AO_ASC_MAX 64
/* Added to the level of everything the codecs log through their contexts (as opus_aac.c). */
#define AO_LOG_OFFSET 64

typedef struct ao ao_t;

struct ao {
    AVCodecContext *dec, *enc;
    SwrContext *swr;       /* made at the first decoded frame (its format, rate, layout) */
    int swr_rate, swr_fmt, swr_channels;
    AVPacket *pkt;
    AVFrame *dframe, *eframe;
    AVAudioFifo *fifo;     /* interleaved float, `channels` channels, 48 kHz */
    int channels, fs;
    int64_t head_pts;      /* pts of the FIFO's first sample */
    float scratch[AO_CHUNK * 2];
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

void ao_free(ao_t *t)
{
    if (!t)
        return;
    avcodec_free_context(&t->dec);
    avcodec_free_context(&t->enc);
    swr_free(&t->swr);
    av_packet_free(&t->pkt);
    av_frame_free(&t->dframe);
    av_frame_free(&t->eframe);
    av_audio_fifo_free(t->fifo);
    av_free(t);
}

ao_t *ao_new(const uint8_t *asc, int asclen, int channels, int bitrate, char *err, size_t errlen)
{
    const AVCodec *dc, *ec;
    ao_t *t;
    int ret;

    if (!asc || asclen < 2 || asclen > AO_ASC_MAX) {
        set_err(err, errlen, "the AudioSpecificConfig must be 2-64 bytes", 0);
        return NULL;
    }
    if (channels != 1 && channels != 2) {
        set_err(err, errlen, "Opus channels must be 1 or 2", 0);
        return NULL;
    }
    if (bitrate < 6000 || bitrate > 510000) {
        set_err(err, errlen, "the Opus bit rate must be 6000..510000 bit/s", 0);
        return NULL;
    }
    dc = avcodec_find_decoder_by_name("aac"); /* the native one */
    ec = avcodec_find_encoder_by_name("libopus");
    if (!dc || !ec) {
        set_err(err, errlen, dc ? "libavcodec has no libopus encoder" : "libavcodec has no aac decoder", 0);
        return NULL;
    }
    t = av_mallocz(sizeof *t);
    if (!t) {
        set_err(err, errlen, "out of memory", AVERROR(ENOMEM));
        return NULL;
    }
    t->channels = channels;
    t->dec = avcodec_alloc_context3(dc);
    t->enc = avcodec_alloc_context3(ec);
    t->pkt = av_packet_alloc();
    t->dframe = av_frame_alloc();
    t->eframe = av_frame_alloc();
    if (!t->dec || !t->enc || !t->pkt || !t->dframe || !t->eframe) {
        set_err(err, errlen, "out of memory", AVERROR(ENOMEM));
        goto fail;
    }
    t->dec->log_level_offset = AO_LOG_OFFSET;
    t->enc->log_level_offset = AO_LOG_OFFSET;

    t->dec->extradata = av_mallocz(asclen + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!t->dec->extradata) {
        set_err(err, errlen, "out of memory", AVERROR(ENOMEM));
        goto fail;
    }
    memcpy(t->dec->extradata, asc, asclen);
    t->dec->extradata_size = asclen;
    if ((ret = avcodec_open2(t->dec, dc, NULL)) < 0) {
        set_err(err, errlen, "opening the aac decoder (bad AudioSpecificConfig?)", ret);
        goto fail;
    }

    t->enc->sample_fmt = AV_SAMPLE_FMT_FLT;
    t->enc->sample_rate = AO_RATE;
    av_channel_layout_default(&t->enc->ch_layout, channels);
    t->enc->bit_rate = bitrate;
    t->enc->time_base = (AVRational){ 1, AO_RATE };
    if ((ret = avcodec_open2(t->enc, ec, NULL)) < 0) {
        set_err(err, errlen, "opening the libopus encoder", ret);
        goto fail;
    }
    t->fs = t->enc->frame_size;
    if (t->fs <= 0 || t->fs > AO_RATE / 10) {
        set_err(err, errlen, "unexpected opus encoder frame size", 0);
        goto fail;
    }
    t->eframe->format = AV_SAMPLE_FMT_FLT;
    t->eframe->sample_rate = AO_RATE;
    t->eframe->nb_samples = t->fs;
    if ((ret = av_channel_layout_copy(&t->eframe->ch_layout, &t->enc->ch_layout)) < 0
        || (ret = av_frame_get_buffer(t->eframe, 0)) < 0) {
        set_err(err, errlen, "allocating the encoder frame", ret);
        goto fail;
    }
    t->fifo = av_audio_fifo_alloc(AV_SAMPLE_FMT_FLT, channels, AO_FIFO_MAX + AO_CHUNK);
    if (!t->fifo) {
        set_err(err, errlen, "allocating the audio fifo", AVERROR(ENOMEM));
        goto fail;
    }
    return t;

fail:
    ao_free(t);
    return NULL;
}

/* The resampler for frames like `f` (made again if the decoder's output changes). */
static int resampler(ao_t *t, AVFrame *f)
{
    AVChannelLayout out;
    int ret;

    if (t->swr && t->swr_rate == f->sample_rate && t->swr_fmt == f->format
        && t->swr_channels == f->ch_layout.nb_channels)
        return 0;
    swr_free(&t->swr);
    if (f->sample_rate < 8000 || f->sample_rate > 96000 || f->ch_layout.nb_channels < 1)
        return AVERROR(ENOSYS);
    av_channel_layout_default(&out, t->channels);
    if ((ret = swr_alloc_set_opts2(&t->swr, &out, AV_SAMPLE_FMT_FLT, AO_RATE, &f->ch_layout, (enum AVSampleFormat)f->format,
                                   f->sample_rate, AO_LOG_OFFSET, NULL)) < 0)
        return ret;
    if ((ret = swr_init(t->swr)) < 0) {
        swr_free(&t->swr);
        return ret;
    }
    t->swr_rate = f->sample_rate;
    t->swr_fmt = f->format;
    t->swr_channels = f->ch_layout.nb_channels;
    return 0;
}

/* Append n samples, dropping the oldest whole frames when the FIFO would pass AO_FIFO_MAX. */
static int fifo_put(ao_t *t, float *data, int n)
{
    int size = av_audio_fifo_size(t->fifo);
    int over = size + n - AO_FIFO_MAX;
    void *planes[1] = { data };

    if (over > 0) {
        int d = (over + t->fs - 1) / t->fs * t->fs;
        if (d > size)
            d = size;
        av_audio_fifo_drain(t->fifo, d);
        t->head_pts += d;
    }
    return av_audio_fifo_write(t->fifo, planes, n) == n ? 0 : AVERROR(ENOMEM);
}

static int queue_frame(ao_t *t, AVFrame *f)
{
    uint8_t *out[1] = { (uint8_t *)t->scratch };
    int ret, n, in = f->nb_samples;
    const uint8_t **src = (const uint8_t **)f->extended_data;

    if ((ret = resampler(t, f)) < 0)
        return ret;
    for (;;) {
        n = swr_convert(t->swr, out, AO_CHUNK, src, in);
        if (n < 0)
            return n;
        if (n > 0 && (ret = fifo_put(t, t->scratch, n)) < 0)
            return ret;
        if (n < AO_CHUNK)
            return 0;
        /* The output was full: more may wait in the resampler. */
        src = NULL;
        in = 0;
    }
}

int ao_push(ao_t *t, const uint8_t *aac, int len)
{
    int ret, r, total = 0;

    if (!t || !aac || len <= 0 || len > AO_PACKET_MAX)
        return AVERROR(EINVAL);
    if ((ret = av_new_packet(t->pkt, len)) < 0)
        return ret;
    memcpy(t->pkt->data, aac, len);
    ret = avcodec_send_packet(t->dec, t->pkt);
    av_packet_unref(t->pkt);
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

int ao_pull(ao_t *t, uint8_t *out, int cap, int64_t *pts)
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
        if ((ret = av_frame_make_writable(t->eframe)) < 0)
            return ret;
        if (av_audio_fifo_read(t->fifo, (void **)t->eframe->extended_data, t->fs) != t->fs)
            return AVERROR_BUG;
        t->eframe->pts = t->head_pts;
        t->head_pts += t->fs;
        if ((ret = avcodec_send_frame(t->enc, t->eframe)) < 0)
            return ret;
    }
}
